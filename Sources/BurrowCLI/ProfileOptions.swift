import ArgumentParser
import BurrowProfile
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// Options shared by commands that load a profile.
struct ProfileOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The host policy file.", valueName: "file"))
    var policy: String = HostPolicy.defaultPath

    /// Loads the host policy: the file if it exists, the defaults only when
    /// the default path does not exist at all. A policy that exists but cannot
    /// be read is an error, never a silent fall-back to the (looser) defaults.
    func loadPolicy() throws -> HostPolicy {
        guard let text = readTextFile(policy) else {
            var st = stat()
            if policy == HostPolicy.defaultPath && lstat(policy, &st) != 0 && errno == ENOENT { return .defaults }
            throw CLIError("cannot read the policy file \(policy): it must be a readable regular file")
        }
        do {
            let doc = try ConfigValue.parse(text, format: .toml, file: policy)
            return try HostPolicy.decode(doc, file: policy)
        } catch let e as ProfileErrors {
            throw CLIError(e.description)
        } catch {
            throw CLIError("\(error)")
        }
    }

    func loader(policy: HostPolicy) -> ProfileLoader {
        ProfileLoader(policy: policy, searchPath: profileSearchPath(), read: readTextFile)
    }
}

/// Where profiles given by name are found: $BURROW_PROFILE_PATH (colon-separated), then /etc/burrow/profiles.
func profileSearchPath() -> [String] {
    var dirs: [String] = []
    if let env = getenv("BURROW_PROFILE_PATH") {
        dirs += String(cString: env).split(separator: ":").map(String.init)
    }
    return dirs + ["/etc/burrow/profiles"]
}

/// The contents of a regular file as UTF-8, or nil.
@Sendable func readTextFile(_ path: String) -> String? {
    var st = stat()
    guard stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG, st.st_size < 4 << 20,
        let data = FileManager.default.contents(atPath: path)
    else { return nil }
    return String(decoding: data, as: UTF8.self)
}

/// A failure with a message for the operator; ArgumentParser prints it and exits 1.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
