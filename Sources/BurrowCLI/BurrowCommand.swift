package import ArgumentParser
import BurrowSystem

/// Burrow's version, printed by `burrow --version` and `burrowd --version`.
package let burrowVersion = "0.1.0"

/// `burrow`: the operator's command line.
package struct BurrowCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "burrow",
        abstract: "Run AI-assistant tools inside sandboxes built from their security profiles.",
        discussion: """
            A profile says what a tool may read, write, execute and reach, and how much it may use. \
            Burrow clamps it by the host policy (/etc/burrow/burrow.toml) and compiles it into a launch \
            plan: namespaces, mounts, seccomp, Landlock, capabilities, rlimits and cgroup limits.

            Start with:
              burrow doctor
              burrow profile lint Profiles/*.toml
              burrow dry-run --profile Profiles/mcp-server-git.toml -- git status
              burrow audit --since 1h
              burrow tools list                  (tools registered with burrowd)
              burrow invoke TOOL -- ARGS         (run one through burrowd)
            """,
        version: burrowVersion,
        subcommands: [
            RunCommand.self, McpCommand.self, ApproveCommand.self, DryRunCommand.self, AuditCommand.self, ProfileCommand.self, DoctorCommand.self, ToolsCommand.self, InvokeCommand.self,
            KeysCommand.self, AdminCommand.self,
        ])

    package init() {}
}

/// Entry points for the executables, which import nothing else.
package enum Entry {
    package static func burrow() {
        Phases.start()
        BurrowCommand.main()
    }
}
