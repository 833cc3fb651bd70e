import ArgumentParser
import BurrowProfile
import FoundationEssentials

struct ProfileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile",
        abstract: "Work with security profiles.",
        subcommands: [LintCommand.self])
}

/// `burrow profile lint FILE...`: validates profiles against the host policy.
struct LintCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lint",
        abstract: "Check profiles for errors: unknown keys, bad paths, limits above the host policy, contradictions.",
        discussion: """
            Each problem is printed as FILE: KEY.PATH: MESSAGE. Warnings do not fail the lint.
            Exit status: 0 when every profile is valid, 1 when any has an error.

            Example:
              burrow profile lint Profiles/*.toml
              burrow profile lint --policy /etc/burrow/burrow.toml my-tool.toml
            """)

    @OptionGroup var options: ProfileOptions

    @Flag(name: .long, help: "Print the findings as JSON.")
    var json = false

    @Argument(help: ArgumentHelp("Profile files (.toml or .json) or names.", valueName: "profile"))
    var profiles: [String]

    func run() throws {
        let policy = try options.loadPolicy()
        let loader = options.loader(policy: policy)
        let style = Style.stdout
        var failed = false
        var report: [LintResult] = []
        for reference in profiles {
            let loaded = loader.load(reference)
            failed = failed || !loaded.errors.isEmpty || loaded.profile == nil
            report.append(LintResult(profile: reference, valid: loaded.profile != nil && loaded.errors.isEmpty, issues: loaded.issues))
            guard !json else { continue }
            if loaded.errors.isEmpty {
                print("\(style.green("ok"))    \(reference)")
            } else {
                print("\(style.red("error")) \(reference)")
            }
            for issue in loaded.issues {
                print("  " + printable(issue.description))
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let data = try encoder.encode(report)
            print(String(decoding: data, as: UTF8.self))
        }
        if failed { throw ExitCode(1) }
    }
}

/// One profile's lint outcome, as printed by `burrow profile lint --json`.
struct LintResult: Codable {
    var profile: String
    var valid: Bool
    var issues: [ProfileIssue]
}
