import ArgumentParser
import BurrowAPI
import BurrowAudit
import BurrowHost
import BurrowInvocation
import BurrowJSON
import BurrowManifest
import BurrowProfile
import BurrowSystem
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

extension ToolsCommand {
    struct Manifest: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "manifest",
            abstract: "Print a manifest of what a tool runs: every file that is not the host's base system, by SHA-256.",
            discussion: """
                Lists the command's executable (and the links on the way to it), files its arguments \
                name by absolute path (a script), and the Python virtualenv it lives in (found by its \
                pyvenv.cfg, covered whole: a file added there later fails verification too). Files \
                under /usr (not /usr/local) and /etc that only root can change are the base system \
                and are not listed. Add with --root and --file what the tool loads that Burrow cannot \
                see. Sign the result with `burrow tools sign`.
                """)

        @Option(
            name: .long,
            help: ArgumentHelp(
                "The tool's security profile (a file or a name); the digest of it and the files it extends (the audit's profileDigest) goes into the manifest, its [tool] id and version too.",
                valueName: "file|name"))
        var profile: String?

        @Option(
            name: .long,
            help: ArgumentHelp(
                "Instead of --profile: a registration as JSON, in Burrow's form or the specification's (security, metadata, command): its profile as burrowd will load it, and its command unless one follows '--'.",
                valueName: "file"))
        var registration: String?

        @OptionGroup var options: ProfileOptions

        @Option(name: .long, help: "The trust level the signer will claim: system, verified, community or untrusted (default: the profile's trust_level).")
        var trustLevel: String?

        @Option(name: .long, help: ArgumentHelp("How long the signature holds, such as 90d (default 90d).", valueName: "duration"))
        var expires: String = "90d"

        @Option(name: .long, help: ArgumentHelp("A directory the tool loads from, covered whole (repeat).", valueName: "dir"))
        var root: [String] = []

        @Option(name: .long, help: ArgumentHelp("Another file the tool executes or loads (repeat).", valueName: "path"))
        var file: [String] = []

        @Option(name: [.customShort("o"), .long], help: ArgumentHelp("Write it here (default: standard output).", valueName: "file"))
        var output: String?

        @Argument(parsing: .postTerminator, help: ArgumentHelp("The command, after '--'.", valueName: "command"))
        var command: [String] = []

        func validate() throws {
            if (profile == nil) == (registration == nil) { throw ValidationError("give --profile FILE, or --registration FILE.json") }
            if command.isEmpty && registration == nil {
                throw ValidationError("give the command after '--', e.g. -- /opt/burrow/venvs/mcp-server-time/bin/mcp-server-time")
            }
            if let trustLevel, !ManifestSignature.levels.contains(trustLevel) { throw ValidationError("--trust-level: system, verified, community or untrusted") }
            guard let duration = Seconds(parsing: expires), duration.milliseconds >= 60_000, duration.milliseconds <= 3_660 * 86_400_000 else {
                throw ValidationError("--expires: a duration from a minute to ten years, such as 90d")
            }
            for path in root + file where !path.hasPrefix("/") { throw ValidationError("--root, --file: absolute paths (\(path) is not one)") }
        }

        func run() throws {
            // Loaded as a run (or burrowd, for a registration) loads it: the digest it compares is over the same files.
            let planner = Planner(policy: try options.loadPolicy(), host: HostFacts.probe(children: false))
            var command = command
            let loading: Planner.Loading
            if let registration {
                let document: ToolRegistration
                do {
                    document = try SpecificationForm.decode(try JSONParser.parse(try ManifestIO.read(registration)), limit: 64 << 20).registration
                } catch {
                    throw CLIError("\(registration) is not a registration: \(error)")
                }
                if command.isEmpty { command = document.command }
                loading = planner.load(.document(document.profile, id: document.id))
            } else {
                loading = planner.load(.reference(profile ?? ""))
            }
            guard let loaded = loading.loaded, let digest = loaded.digest else {
                FrontDoor.printIssues(loading.issues)
                throw ExitCode(1)
            }
            let tool = loaded.effective.profile.tool
            let now = AuditClock.now() / 1_000_000
            let lifetime = Int64((Seconds(parsing: expires)?.milliseconds ?? 0) / 1000)
            let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":").map(String.init)
            let builder = ManifestBuilder(
                tool: .init(id: tool.id, version: tool.version), trustLevel: trustLevel ?? tool.trustLevel.rawValue, profileDigest: digest, command: command,
                searchPath: path, extraRoots: root, extraFiles: file, issued: now, expires: now + lifetime)
            let manifest: ToolManifest
            do {
                manifest = try builder.build()
            } catch {
                throw CLIError("\(error)")
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let json = try encoder.encode(manifest) + Data("\n".utf8)
            if let output {
                try ManifestIO.write(output, Array(json))
                printError("\(output): \(manifest.files.count) files, \(manifest.links.count) links, \(manifest.roots.count) roots")
            } else {
                print(String(decoding: json, as: UTF8.self), terminator: "")
            }
        }
    }

    struct Sign: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sign", abstract: "Sign a manifest: writes MANIFEST.sig (Ed25519, with the signer's certificate chain).")

        @Option(name: .long, help: ArgumentHelp("The signer's Ed25519 private key (PEM).", valueName: "file"))
        var key: String

        @Option(name: .long, help: ArgumentHelp("The signer's certificate (PEM), then any intermediates, in one file.", valueName: "file"))
        var cert: String

        @Argument(help: "The manifest.")
        var manifest: String

        func run() throws {
            let bytes = try ManifestIO.read(manifest)
            do {
                _ = try ToolManifest.parse(bytes)
            } catch {
                throw CLIError("\(manifest): \(error)")
            }
            let keyPEM = try ManifestIO.read(key, secret: true)
            let chain = try ManifestIO.read(cert)
            let signature: [UInt8]
            do {
                signature = try ManifestSignature.sign(manifest: bytes, privateKeyPEM: keyPEM, chainPEM: chain)
            } catch {
                throw CLIError("\(error)")
            }
            try ManifestIO.write(manifest + ".sig", signature)
            print("signed \(manifest) → \(manifest).sig")
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify",
            abstract: "Verify a manifest: its signature (MANIFEST.sig), the signer's chain, its expiry and every file's digest.",
            discussion: """
                Exits 0 when all of it holds, 1 otherwise, saying each thing that failed. The store \
                holds the trust anchors (*.pem, *.crt) and the CAs' CRLs (*.crl); every CA needs a \
                current CRL. Prints the signer and the trust level the manifest gets: the lowest of \
                what it claims and what the signer's certificate may grant.
                """)

        @Option(
            name: .long,
            help: ArgumentHelp("The certificate store: trust anchors (*.pem, *.crt) and CRLs (*.crl) (default: the policy's [security] cert_store_path, /etc/burrow/certs).", valueName: "dir"))
        var store: String?

        @OptionGroup var options: ProfileOptions

        @Option(name: .long, help: ArgumentHelp("The signature (default: MANIFEST.sig).", valueName: "file"))
        var signature: String?

        @Argument(help: "The manifest.")
        var manifest: String

        func run() throws {
            let bytes = try ManifestIO.read(manifest)
            let parsed: ToolManifest
            do {
                parsed = try ToolManifest.parse(bytes)
            } catch {
                throw CLIError("\(manifest): \(error)")
            }
            var failures: [String] = []
            let signaturePath = signature ?? manifest + ".sig"
            if let signatureBytes = try? ManifestIO.read(signaturePath) {
                do {
                    let trust = try TrustStore.load(store ?? options.loadPolicy().security.certStorePath)
                    let (_, verified) = try ManifestSignature.verify(manifest: bytes, signatureFile: signatureBytes, store: trust, now: AuditClock.now() / 1_000_000)
                    print(
                        "signature: good, by \(verified.signer); trust level \(verified.trustLevel) (claimed \(parsed.trustLevel), the signer may grant \(verified.granted)\(verified.storeCeiling.map { ", held to \($0.level) by \($0.file)" } ?? "")); expires \(parsed.expires)"
                    )
                } catch {
                    failures.append("signature: \(error)")
                }
            } else {
                failures.append("signature: \(signaturePath) cannot be read")
            }
            let problems = ManifestFiles.verify(parsed)
            for p in problems { failures.append("file \(p)") }
            if problems.isEmpty { print("files: all \(parsed.files.count) files and \(parsed.links.count) links as listed, nothing unlisted in \(parsed.roots.count) roots") }
            for f in failures { printError("burrow: \(printable(f))") }
            if !failures.isEmpty { throw ExitCode(1) }
        }
    }
}

/// Whole files for the manifest commands: read through BurrowSystem's
/// checked reader (a key must be the caller's own, mode 0600), written whole.
enum ManifestIO {
    static func read(_ path: String, secret: Bool = false) throws -> [UInt8] {
        do {
            return try FileIO.readConfigured(path, secret: secret, limit: 256 << 20)
        } catch {
            throw CLIError("\(path): \(error)")
        }
    }

    /// Written to a new file beside it, then renamed over it: never
    /// through a symlink someone planted, never half written.
    static func write(_ path: String, _ bytes: [UInt8]) throws {
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CLIError("cannot write \(path): \(String(cString: strerror(errno)))") }
        var off = 0
        var failed = fchmod(fd, 0o644) != 0
        while !failed && off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { failed = true } else { off += n }
        }
        failed = failed || fsync(fd) != 0
        close(fd)
        guard !failed, rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw CLIError("cannot write \(path): \(reason)")
        }
    }
}
