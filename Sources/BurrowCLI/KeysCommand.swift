import ArgumentParser
import BurrowAPI
import BurrowProfile

/// `burrow keys`: API keys for remote callers of burrowd's HTTPS listener.
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Create, list and revoke API keys for burrowd's HTTPS listener.",
        discussion: """
            A remote caller (a registry on another host) presents a key as \
            `Authorization: Bearer bk_<id>_<secret>`; its principal is `key:<id>` and it holds the \
            roles the key carries. burrowd keeps only the secret's SHA-256: the secret is printed \
            once, when the key is made. The listener accepts keys when the host policy says \
            `[auth] methods = ["mtls", "api_key"]` (docs/daemon-api.md). Keys are managed on the \
            host only, through burrowd's socket, by an admin; a key carries only roles its creator holds.

            Examples:
              burrow keys create --name registry-eu --role invoker --expires 30d
              burrow keys list
              burrow keys revoke 3f9a0c41d2b7e850
            """,
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create", abstract: "Make a key and print its secret (shown this once).")

        @OptionGroup var daemon: DaemonOptions

        @Option(name: .long, help: "What the key is for (shown by list and in the audit log).")
        var name: String

        @Option(name: .long, help: ArgumentHelp("A role the key carries: invoker, admin or auditor (repeat for several).", valueName: "role"))
        var role: [String] = []

        @Option(name: .long, help: ArgumentHelp("How long it lives: such as 12h, 30d (at most [auth] max_key_lifetime, 366d by default).", valueName: "duration"))
        var expires: String = "90d"

        @Flag(name: .long, help: "Print the answer (the key and its secret) as JSON.")
        var json = false

        func validate() throws {
            if role.isEmpty { throw ValidationError("give at least one --role (invoker, admin or auditor)") }
            guard let lifetime = Seconds(parsing: expires), lifetime.milliseconds >= 1000 else {
                throw ValidationError("--expires: expected a duration such as 12h or 30d")
            }
            _ = lifetime
        }

        func run() throws {
            let seconds = Int((Seconds(parsing: expires)?.milliseconds ?? 0) / 1000)
            let created = try daemon.call("POST", "/v1/keys", body: APIKeyRequest(name: name, roles: role, expiresInSeconds: seconds), as: APIKeyCreated.self)
            if json { return try printJSON(created) }
            print(created.secret)
            printError("key \(created.key.id) (\(created.key.roles.joined(separator: ", "))), expires \(created.key.expiresAt): the line above is its secret, shown only now")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the keys, newest first (never their secrets).")

        @OptionGroup var daemon: DaemonOptions

        @Flag(name: .long, help: "Print them as JSON.")
        var json = false

        func run() throws {
            let keys = try daemon.call("GET", "/v1/keys", as: [APIKeyInfo].self)
            if json { return try printJSON(keys) }
            guard !keys.isEmpty else { return print("no keys") }
            let style = Style.stdout
            var rows = [["ID", "NAME", "ROLES", "EXPIRES", "REVOKED", "CREATED BY"].map(style.bold)]
            for k in keys { rows.append([k.id, k.name, k.roles.joined(separator: ","), k.expiresAt, k.revokedAt ?? "-", k.createdBy].map(printable)) }
            print(columns(rows, indent: 0))
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke a key: refused from the next request on.")

        @OptionGroup var daemon: DaemonOptions

        @Argument(help: "The key's id (16 hex digits, as list shows).")
        var id: String

        func run() throws {
            let key = try daemon.call("DELETE", "/v1/keys/\(urlEncoded(id))", as: APIKeyInfo.self)
            print("revoked \(key.id) (\(printable(key.name))) at \(key.revokedAt ?? "?")")
        }
    }
}
