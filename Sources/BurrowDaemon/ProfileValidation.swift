import BurrowAPI
import BurrowAudit
import BurrowInvocation
import BurrowJSON
import BurrowPolicy
import BurrowProfile
import BurrowSystem

extension Planner {
    /// A registration's profile, validated as `burrow profile lint` does,
    /// clamped as every invocation is and, given a command, compiled into the
    /// plan it would get here: the API's report of what the front door would
    /// do with it.
    /// - Parameter manifest: the registration's signed manifest (the plan's trust step verifies it).
    func validate(_ profile: JSON, id: String, command: [String]?, manifest: ManifestSource? = nil) -> (ValidationReport, Loaded?) {
        let loading = load(.document(profile, id: id))
        var findings = loading.issues.map { ValidationFinding(severity: $0.severity.rawValue, file: $0.file, keyPath: $0.keyPath, message: $0.message) }
        guard let loaded = loading.loaded else {
            return (ValidationReport(valid: false, findings: findings, clamps: [], exposureScore: nil, plan: nil), nil)
        }
        let clamps = loaded.effective.clamps
        guard let command, !command.isEmpty else {
            return (ValidationReport(valid: true, findings: findings, clamps: clamps, exposureScore: nil, plan: nil), loaded)
        }
        do {
            let plan = try self.plan(loaded, argv: command, environment: [:], sandboxID: nil, manifest: manifest)
            let limits = plan.limits
            let summary = PlanSummary(
                sandboxLevel: plan.sandboxLevel.rawValue, namespaces: plan.namespaces.map(\.kind.rawValue), networkAccess: loaded.effective.profile.networkAccess.rawValue,
                executable: plan.command.executable,
                unenforceable: plan.controls.filter { !$0.enforceable }.map { "\($0.control) (\($0.requested)): \($0.detail)" },
                limits: [
                    "max_cpu_time": "\(limits.maxCpuTime)", "max_memory": "\(limits.maxMemory)", "max_execution_time": "\(limits.maxExecutionTime)",
                    "max_processes": "\(limits.maxProcesses)", "max_open_files": "\(limits.maxOpenFiles)", "max_file_size": "\(limits.maxFileSize)",
                    "scratch_size": "\(limits.scratchSize)",
                ],
                trust: TrustSummary(
                    level: plan.trust.level.rawValue, claimed: plan.trust.claimed.rawValue, reason: plan.trust.reason, signer: plan.trust.manifest?.signer,
                    granted: plan.trust.manifest?.granted.rawValue, expires: plan.trust.manifest?.expires, manifestDigest: plan.trust.manifest?.digest))
            return (ValidationReport(valid: true, findings: findings, clamps: clamps, exposureScore: plan.exposure.score, plan: summary), loaded)
        } catch {
            findings.append(ValidationFinding(severity: "error", file: Planner.document(profile, id: id).name, keyPath: "command", message: error.description))
            return (ValidationReport(valid: false, findings: findings, clamps: clamps, exposureScore: nil, plan: nil), nil)
        }
    }
}

extension ToolRegistration {
    /// Its signed manifest, as the front door takes it.
    var manifestSource: ManifestSource? {
        manifest.map { .bytes(manifest: Array($0.manifest.utf8), signature: Array($0.signature.utf8), label: "the registration of \(id) \(metadata.version)") }
    }
}
