import ArgumentParser
import BurrowProfile
import BurrowRuntime
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

    func loader(policy: HostPolicy, read: @escaping ProfileLoader.Reader = readTextFile) -> ProfileLoader {
        ProfileLoader(policy: policy, searchPath: profileSearchPath(), read: read)
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
