import ArgumentParser
import BurrowHost
import BurrowProfile
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

/// A failure with a message for the operator; ArgumentParser prints it and exits 1.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
