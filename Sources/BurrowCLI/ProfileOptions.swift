import ArgumentParser
import BurrowHost
import BurrowInvocation
import BurrowProfile
import BurrowSession
import BurrowSystem
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// Options shared by commands that load a profile.
struct ProfileOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The host policy file.", valueName: "file"))
    var policy: String = HostPolicy.defaultPath

    /// Loads the host policy (see `HostConfiguration.loadPolicy`).
    func loadPolicy() throws -> HostPolicy {
        do {
            return try HostConfiguration.loadPolicy(policy)
        } catch {
            throw CLIError(error.description)
        }
    }

    func loader(policy: HostPolicy, read: @escaping ProfileLoader.Reader = HostConfiguration.readTextFile) -> ProfileLoader {
        ProfileLoader(policy: policy, searchPath: HostConfiguration.profileSearchPath(), read: read)
    }
}

/// `--as-user`: the plan's bind sources opened with another user's rights.
struct CallerOptions: ParsableArguments {
    @Option(
        name: .customLong("as-user"),
        help: ArgumentHelp(
            "Open every path the sandbox binds with this user's rights (a name or a uid), as an unprivileged user's own run is checked: a path the user cannot reach, or not with the access its mount gives, is refused. Root only.",
            discussion: "Example: burrow dry-run --as-user alice --profile ./alice.toml -- tool shows the plan alice's run would get.", valueName: "user"))
    var asUser: String?

    /// The user's credentials (uid, primary group, every group it belongs to), or nil without --as-user.
    func credentials() throws -> CallerCredentials? {
        guard let asUser else { return nil }
        guard getuid() == 0 else { throw CLIError("--as-user needs root: it checks paths for another user") }
        guard let uid = UInt32(asUser) ?? UserDatabase.userID(asUser) else { throw CLIError("--as-user: no user \(asUser)") }
        guard uid != 0 else { throw CLIError("--as-user: root's own rights reach everything; name an unprivileged user") }
        guard let gid = UserDatabase.primaryGroup(uid) else { throw CLIError("--as-user: uid \(uid) has no passwd entry (its groups are unknown)") }
        return CallerCredentials.ofUser(uid, primary: gid)
    }
}

/// A failure with a message for the operator; ArgumentParser prints it and exits 1.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// `--param NAME=VALUE`: values for the profile's parameters (`[parameters.NAME]`).
struct ParameterOptions: ParsableArguments {
    @Option(
        name: .customLong("param"),
        help: ArgumentHelp(
            "A value for one of the profile's parameters, NAME=VALUE (repeatable); `burrow dry-run` shows what each resolved to.",
            discussion: "Example: --param repo=/home/me/project for a profile that grants \"${repo}/**\".", valueName: "name=value"))
    var values: [String] = []

    /// The values by name; a malformed or repeated one is an error.
    func parsed() throws -> [String: String] {
        var out: [String: String] = [:]
        for text in values {
            guard let eq = text.firstIndex(of: "="), eq != text.startIndex else {
                throw CLIError("--param takes NAME=VALUE, e.g. --param repo=/home/me/project (got '\(printable(text))')")
            }
            let name = String(text[..<eq])
            guard out.updateValue(String(text[text.index(after: eq)...]), forKey: name) == nil else {
                throw CLIError("--param \(printable(name)) is given twice")
            }
        }
        return out
    }
}

/// `--manifest`: the tool's signed manifest, for `run`, `mcp` and `dry-run`.
struct ManifestOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The tool's signed manifest (its signature beside it, FILE.sig; default: the profile's [tool] manifest).",
            discussion: "The run gets the trust level the signer grants, and its sandbox shows the verified copies of the files the manifest lists. See `burrow tools manifest`.",
            valueName: "file"))
    var manifest: String?

    /// What the front door takes (an absolute path).
    var source: ManifestSource? {
        manifest.map { .file($0.hasPrefix("/") ? $0 : currentDirectory() + "/" + $0) }
    }

    /// What a request through burrowd carries: both files, read with this process's rights.
    func forSession() throws -> Session.Request.Manifest? {
        guard let manifest else { return nil }
        func read(_ path: String) throws -> String {
            do {
                return String(decoding: try FileIO.readConfigured(path, secret: false, limit: DocumentLimits.maxBytes), as: UTF8.self)
            } catch .tooLarge {
                throw CLIError("\(path): larger than the \(DocumentLimits.maxBytes) bytes a request through burrowd's session socket may carry; run it as root")
            } catch {
                throw CLIError("\(path): \(error)")
            }
        }
        return Session.Request.Manifest(document: try read(manifest), signature: try read(manifest + ".sig"), file: manifest)
    }
}
