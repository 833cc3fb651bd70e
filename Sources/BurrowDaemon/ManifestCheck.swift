import BurrowAPI
import BurrowAudit
import BurrowHost
import BurrowManifest
import BurrowProfile
import BurrowSystem
import Logging
import ServiceLifecycle

/// The check of registered tools' signed manifests, at start and every
/// `[daemon] manifest_check_interval` (a day): each current version that
/// carries a manifest is verified again (signature, chain and CRLs, expiry)
/// and its files are compared with what was signed (every file hashed,
/// every link read, nothing unlisted in a root). A problem is an
/// AnomalousActivity event by `burrowd:manifests` (`manifest_expired`,
/// `manifest_invalid`, `manifest_mismatch`), and a manifest expiring within
/// a week is a warning in the log. Invocations refuse an expired or changed
/// manifest anyway; this reports the tools nobody invoked.
struct ManifestCheck: Sendable {
    static let principal = "burrowd:manifests"
    let registry: RegistryStore
    let audit: AuditStore
    let policy: HostPolicy
    let logger: Logger

    /// One check of every registered manifest; returns the events written.
    @discardableResult
    func checkAll(now: Int64 = AuditClock.now()) -> [ManifestMismatchDetails] {
        let records: [ToolRecord]
        do {
            records = try registry.list(category: nil, status: nil)
        } catch {
            logger.error("manifest check: the registry cannot be read: \(error)")
            return []
        }
        var found: [(String, ManifestMismatchDetails)] = []
        for record in records {
            guard let signed = record.registration.manifest else { continue }
            let label = "the registration of \(record.registration.id) \(record.registration.metadata.version)"
            func problem(_ reason: String, _ path: String, _ message: String) {
                found.append((record.registration.id, ManifestMismatchDetails(path: path, message: message, manifest: label, reason: reason)))
            }
            let bytes = Array(signed.manifest.utf8)
            let manifest: ToolManifest
            do {
                manifest = try ToolManifest.parse(bytes)
            } catch {
                problem("manifest_invalid", "", "\(label): \(error)")
                continue
            }
            let expires = AuditClock.parse(manifest.expires) ?? 0
            if expires <= now {
                problem("manifest_expired", "", "\(label): the manifest expired at \(manifest.expires); invocations are refused until it is signed again")
                continue
            }
            if expires - now < 7 * 86_400 * 1_000_000 { logger.warning("\(label): the manifest expires at \(manifest.expires), within a week") }
            do {
                let store = try TrustStore.load(policy.security.certStorePath)
                _ = try ManifestSignature.verify(manifest: bytes, signatureFile: Array(signed.signature.utf8), store: store, now: now / 1_000_000)
            } catch {
                problem("manifest_invalid", "", "\(label): \(error)")
                continue
            }
            if let first = ManifestFiles.verify(manifest).first {
                problem("manifest_mismatch", first.path, "\(first) (\(label))")
            }
        }
        for (tool, details) in found {
            do {
                try audit.append([AuditEvent(tool: tool, context: SecurityContext(principal: Self.principal, uid: nil, host: UserDatabase.hostName), details: details)])
            } catch {
                logger.error("manifest check: \(details.message) was not recorded: \(error)")
            }
            logger.warning("manifest check: \(details.message)")
        }
        return found.map(\.1)
    }
}

/// Runs the manifest check at start and every interval while burrowd serves.
struct ManifestCheckService: Service {
    let check: ManifestCheck

    func run() async throws {
        await cancelWhenGracefulShutdown {
            let interval = Duration.milliseconds(check.policy.daemon.manifestCheckInterval.milliseconds)
            while !Task.isCancelled {
                check.checkAll()
                try? await Task.sleep(for: interval)
            }
        }
    }
}
