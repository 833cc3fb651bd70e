import ArgumentParser
import BurrowJSON
import BurrowMCP
import BurrowProfile

#if canImport(Glibc)
    import Glibc
#endif

/// `burrow approve`: signs the approval one MCP call needs to pass an
/// `authorize` content filter.
struct ApproveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve",
        abstract: "Approve one MCP tool call that an 'authorize' content filter holds back.",
        discussion: """
            A profile's [[mcp_policy.content_filters]] with action = "authorize" refuses every call whose \
            arguments match, unless the call carries an approval for exactly that call: this server (the \
            profile's tool id), this tool and these arguments (their digest), until an expiry. The approver \
            signs it with an Ed25519 private key that only the approver holds; the relay checks it with the \
            public key the host policy names ([mcp] approval_key), so neither Burrow nor the client can mint \
            one. Each approval passes one call per session.

            Make the key pair once:
              openssl genpkey -algorithm ed25519 -out /root/burrow-approval.key
              openssl pkey -in /root/burrow-approval.key -pubout -out /etc/burrow/approval.pub
            and set approval_key = "/etc/burrow/approval.pub" under [mcp] in /etc/burrow/burrow.toml.

            The refusal names the digest of the held-back call; approve it with
              burrow approve --key /root/burrow-approval.key --server mcp-server-git --tool git_commit \\
                  --digest sha256:… --ttl 10m
            or give the arguments themselves (--arguments '{"repo_path": "/srv/burrow/repo", …}'). The client \
            then repeats the call with the printed token in params._meta["dev.burrow/approval"].
            """)

    @Option(name: .long, help: ArgumentHelp("The approver's Ed25519 private key (PEM).", valueName: "file"))
    var key: String

    @Option(name: .long, help: ArgumentHelp("The MCP server: the tool id of its profile.", valueName: "id"))
    var server: String

    @Option(name: .long, help: ArgumentHelp("The MCP tool the call names.", valueName: "name"))
    var tool: String

    @Option(name: .long, help: ArgumentHelp("The call's arguments as JSON; their digest is what is approved.", valueName: "json"))
    var arguments: String?

    @Option(name: .long, help: ArgumentHelp("The arguments' digest, as the refusal printed it.", valueName: "sha256:hex"))
    var digest: String?

    @Option(name: .long, help: ArgumentHelp("How long the approval stays valid (30s, 10m, 1h; at most 24h).", valueName: "duration"))
    var ttl: String = "10m"

    func validate() throws {
        if (arguments == nil) == (digest == nil) { throw ValidationError("give exactly one of --arguments and --digest") }
        if let digest, !(digest.hasPrefix("sha256:") && digest.count == 71 && digest.dropFirst(7).allSatisfy(\.isHexDigit)) {
            throw ValidationError("--digest: expected sha256: and 64 hex digits, as the refusal printed it")
        }
        guard let t = Seconds(parsing: ttl), t.milliseconds >= 1000, t.milliseconds <= 86_400_000 else {
            throw ValidationError("--ttl: expected a duration from 1s to 24h, such as 10m")
        }
    }

    func run() throws {
        let argumentsDigest: String
        if let arguments {
            do {
                let value = try JSONParser.parse(Array(arguments.utf8))
                guard case .object = value else { throw ValidationError("--arguments: expected a JSON object") }
                argumentsDigest = MCPRelay.digest(value)
            } catch let error as JSONError {
                throw ValidationError("--arguments: not JSON: \(error)")
            }
        } else if let digest {
            argumentsDigest = digest.lowercased()
        } else {
            throw ValidationError("give --arguments JSON or --digest sha256:HEX")
        }
        guard let lifetime = Seconds(parsing: ttl) else { throw ValidationError("--ttl: expected a duration such as 10m") }
        let expires = Int64(time(nil)) + Int64(lifetime.milliseconds / 1000)
        let token: Result<String, ApprovalError> = Approval.loadKey(key).flatMap { pem in
            Result { () throws(ApprovalError) -> String in
                try Approval.sign(privateKeyPEM: pem, server: server, tool: tool, argumentsDigest: argumentsDigest, expires: expires)
            }
        }
        switch token {
        case .success(let t): print(t)
        case .failure(let error):
            printError("burrow: \(error)")
            throw ExitCode(1)
        }
    }
}
