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

    /// Loads the host policy: the file if it exists, the defaults if the
    /// default path is missing; an explicitly named missing file is an error.
    func loadPolicy() throws -> HostPolicy {
        guard let text = readTextFile(policy) else {
            if policy == HostPolicy.defaultPath { return .defaults }
            throw ValidationError("cannot read the policy file \(policy)")
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

/// A failure with a message for the operator; exit code 1 unless given.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    var code: Int32 = 1
    init(_ description: String, code: Int32 = 1) {
        self.description = description
        self.code = code
    }
}
