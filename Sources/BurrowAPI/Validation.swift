package import BurrowJSON
package import BurrowProfile

/// `POST /v1/security/validate`.
package struct ValidationRequest: Codable, Sendable, Equatable {
    /// As in a registration: a JSON object or TOML text.
    package var profile: JSON
    /// With a command, the plan it would get is compiled too.
    package var command: [String]?
    /// The name findings refer to (default "profile").
    package var id: String?

    package init(profile: JSON, command: [String]? = nil, id: String? = nil) {
        self.profile = profile
        self.command = command
        self.id = id
    }
}

/// One finding of validation, as `burrow profile lint` prints it.
package struct ValidationFinding: Codable, Sendable, Equatable {
    package var severity: String
    package var file: String
    package var keyPath: String
    package var message: String

    package init(severity: String, file: String, keyPath: String, message: String) {
        self.severity = severity
        self.file = file
        self.keyPath = keyPath
        self.message = message
    }
}

/// What the plan for a profile would enforce here.
package struct PlanSummary: Codable, Sendable, Equatable {
    package var sandboxLevel: String
    package var namespaces: [String]
    package var networkAccess: String
    package var executable: String?
    /// Controls the profile asks for that this host cannot enforce: invocations would be refused.
    package var unenforceable: [String]
    package var limits: [String: String]
    /// The level the tool would run at, and the signed manifest behind it.
    package var trust: TrustSummary?

    package init(
        sandboxLevel: String, namespaces: [String], networkAccess: String, executable: String?, unenforceable: [String], limits: [String: String], trust: TrustSummary? = nil
    ) {
        self.sandboxLevel = sandboxLevel
        self.namespaces = namespaces
        self.networkAccess = networkAccess
        self.executable = executable
        self.unenforceable = unenforceable
        self.limits = limits
        self.trust = trust
    }
}

/// A tool's trust as the front door decided it (docs/manifests.md): the
/// level, what the profile claims, why; for a signed tool its signer, the
/// level the signer may grant, the manifest's expiry and digest.
package struct TrustSummary: Codable, Sendable, Equatable {
    package var level: String
    package var claimed: String
    package var reason: String
    package var signer: String?
    package var granted: String?
    package var expires: String?
    package var manifestDigest: String?

    package init(level: String, claimed: String, reason: String, signer: String? = nil, granted: String? = nil, expires: String? = nil, manifestDigest: String? = nil) {
        self.level = level
        self.claimed = claimed
        self.reason = reason
        self.signer = signer
        self.granted = granted
        self.expires = expires
        self.manifestDigest = manifestDigest
    }
}

/// `POST /v1/security/validate`, and the validation part of a registration.
package struct ValidationReport: Codable, Sendable, Equatable {
    package var valid: Bool
    package var findings: [ValidationFinding]
    /// What the host policy changed (as in the launch plan's `clamps`).
    package var clamps: [Clamp]
    /// 0 (nothing exposed) to 10; see `burrow dry-run`.
    package var exposureScore: Double?
    package var plan: PlanSummary?

    package init(valid: Bool, findings: [ValidationFinding], clamps: [Clamp], exposureScore: Double?, plan: PlanSummary?) {
        self.valid = valid
        self.findings = findings
        self.clamps = clamps
        self.exposureScore = exposureScore
        self.plan = plan
    }
}
