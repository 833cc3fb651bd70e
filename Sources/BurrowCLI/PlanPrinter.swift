import BurrowPolicy
import BurrowProfile
import BurrowSystem

/// The human form of a launch plan: one aligned section per kernel mechanism.
struct PlanPrinter {
    var plan: LaunchPlan
    var style: Style
    var showEnvironment: Bool
    var issues: [ProfileIssue]

    func render() -> String {
        var out: [String] = []
        func section(_ title: String, _ body: String) {
            out.append(style.bold(title))
            out.append(body.isEmpty ? "  (none)" : body)
            out.append("")
        }
        let p = plan
        out.append(style.bold("Launch plan for \(p.tool.id) \(p.tool.version)") + " (\(p.tool.name), trust \(p.tool.trustLevel.rawValue))")
        out.append("  profile:    \(p.profileFiles.joined(separator: " -> "))")
        out.append("  sandbox:    \(p.sandboxLevel.rawValue)" + (p.sandboxLevel == .none ? "  (rlimits, no_new_privs and capability drop only: no namespaces, seccomp or Landlock)" : ""))
        out.append("  command:    \(p.command.argv.map(printable).joined(separator: " "))")
        out.append("  executable: \(p.command.executable)")
        out.append("  cwd:        \(p.command.workingDirectory)")
        out.append("  trust:      \(p.trust.level.rawValue)  " + style.dim(p.trust.reason))
        if let m = p.trust.manifest {
            out.append("  manifest:   \(m.source) (\(m.digest.prefix(19))…), signed by \(m.signer), expires \(m.expires)")
            out.append("  verified:   " + (m.verifiedTree.map { "the sandbox shows the copies in \($0)" } ?? "the host's files, checked before the run (sandbox level none: no copies)"))
        }
        for r in p.parameters {
            out.append("  parameter:  \(r.name) (\(r.type.rawValue)) = \(printable(r.value))  " + style.dim(r.source == .caller ? "--param" : r.source.rawValue))
        }
        out.append("")

        section(
            "Controls (requested / enforceable here)",
            columns(
                p.controls.map { c in
                    [c.enforceable ? style.green("yes") : style.red("NO"), c.control.name, c.requested, style.dim(c.detail)]
                }))
        if !p.clamps.isEmpty {
            section("Host policy clamps", columns(p.clamps.map { [$0.key, "\($0.requested) -> \($0.effective)", style.dim($0.reason)] }))
        }
        section("Namespaces", columns(p.namespaces.map { [$0.kind.rawValue, $0.cloneFlag, style.dim($0.reason)] }))
        let id = p.identity
        section(
            "Identity",
            columns(
                [
                    ["uid/gid", "\(id.uid)/\(id.gid)"],
                    ["uid_map", id.uidMap.map { "\($0.inside) \($0.outside) \($0.count)" }.joined(separator: ", ").ifEmpty("unchanged")],
                    ["gid_map", id.gidMap.map { "\($0.inside) \($0.outside) \($0.count)" }.joined(separator: ", ").ifEmpty("unchanged")],
                    ["setgroups", id.setgroups.rawValue], ["groups", id.supplementaryGroups.isEmpty ? "none" : id.supplementaryGroups.map(String.init).joined(separator: ",")],
                    ["note", style.dim(id.note)],
                ] + (p.spec.grantsCheckedAs.map { [["binds checked as", "\($0) (gid \($0.gid), groups \($0.groups.map(String.init).joined(separator: ",")))"]] } ?? [])))
        section(
            "Mounts (in order; then pivot_root and detach the old root)",
            columns(
                p.mounts.map { m in
                    [m.kind.rawValue, m.target, m.source.map { $0 == m.target ? "" : "<- \($0)" } ?? "", m.options.description, style.dim(m.reason)]
                }))
        section(
            "Environment (nothing else is passed)",
            columns(
                p.environment.map { e in
                    [e.name, e.source == .caller && !showEnvironment ? style.dim("<from caller; --show-environment>") : printable(e.value), style.dim(e.source.rawValue)]
                }))
        section("Rlimits", columns(p.rlimits.map { [$0.resource.name, "soft \($0.soft)", "hard \($0.hard)", style.dim($0.reason)] }))
        let cg = p.cgroup
        section(
            "Cgroup" + (cg.version == 0 ? " (no usable hierarchy)" : " v\(cg.version) at \(cg.path)"),
            columns(cg.directories.sorted { $0.key < $1.key }.map { ["in", $0.key, $0.value] })
                + (cg.directories.isEmpty ? "" : "\n")
                + cg.setup.map { "  setup: " + $0 + "\n" }.joined()
                + columns(cg.writes.map { [$0.file, $0.value, style.dim($0.reason)] }) + "\n" + cg.supervised.map { "  supervised: " + $0 }.joined(separator: "\n"))
        let caps = p.capabilities
        section(
            "Capabilities",
            columns([
                ["kept", caps.kept.isEmpty ? "none (all five sets emptied)" : caps.kept.map(\.name).joined(separator: ", ")],
                ["dropped", "\(caps.dropped.count): " + caps.dropped.map(\.name).joined(separator: " ")],
                ["securebits", caps.securebits.description],
                ["no_new_privs", caps.noNewPrivileges ? "yes" : "no"],
            ]))
        let sc = p.seccomp
        var seccompRows: [[String]] = [
            ["architecture", sc.architecture, style.dim("other ABIs (i386 int 0x80, x32): \(sc.badArchitectureAction)")],
            ["default", "\(sc.defaultAction)", style.dim("every call not named here, including unknown and future ones")],
            ["program", "\(sc.instructions) BPF instructions", style.dim(sc.reporting)],
            ["allowed", "\(sc.allowed.count) calls", style.dim(sc.allowed.joined(separator: " "))],
        ]
        seccompRows += groupedRules(sc.rules)
        if !sc.unknownToLibseccomp.isEmpty {
            seccompRows.append(["unknown", sc.unknownToLibseccomp.joined(separator: " "), style.dim("not known on this architecture: default action")])
        }
        section("Seccomp", p.sandboxLevel == .none ? "  none (sandbox level none)" : columns(seccompRows))
        let ll = p.landlock
        var landlockRows: [[String]] = [["ABI", ll.abi.map { "\($0) (best this host offers)" } ?? "unavailable"]]
        landlockRows.append(["handled fs", ll.handledFileSystem.description])
        if !ll.handledNetwork.isEmpty { landlockRows.append(["handled net", ll.handledNetwork.description]) }
        if !ll.scoped.isEmpty { landlockRows.append(["scoped", ll.scoped.description]) }
        landlockRows += ll.pathRules.map { [$0.path, $0.access.description] }
        landlockRows += ll.portRules.map { ["tcp port \($0.port)", $0.access.description] }
        landlockRows += ll.notAvailable.map { ["missing", style.dim($0)] }
        section("Landlock", p.sandboxLevel == .none ? "  none (sandbox level none)" : columns(landlockRows))
        let net = p.network
        var networkRows = [
            ["access", net.access.rawValue + (net.ownNamespace ? " (own network namespace)" : "")],
            ["proxy", net.proxyEndpoint ?? "none"], ["allowlist", net.allowlist.isEmpty ? "none" : net.allowlist.joined(separator: ", ")],
            ["dns", net.dns], ["other traffic", net.otherTraffic],
        ]
        if let e = net.egress {
            networkRows += [
                ["protocols", e.protocols.joined(separator: "; ")],
                ["connections", "at most \(e.maxConnections) open at once; connect timeout \(e.connectTimeoutMilliseconds) ms, idle timeout \(e.idleTimeoutMilliseconds / 1000) s"],
                ["byte budget", e.maxBytes.map { "\(ByteSize(bytes: $0)) both ways per run, then every connection is cut (ResourceLimitExceeded max_network_bytes)" } ?? "none"],
                ["refused ranges", style.dim(e.refusedRanges.joined(separator: ", ") + " (unless an IP/CIDR entry names them)")],
                ["audit", "each allowed connection as NetworkConnection when it ends, each refusal as PermissionDenied"],
            ]
        }
        section("Network", columns(networkRows))
        let mcp = p.mcp
        if mcp.isConfigured {
            var rows = [
                [
                    "server",
                    mcp.server ? "yes (mcp = true): burrowd serves it as MCP sessions" : "not marked (mcp = true): burrowd will not open sessions; burrow mcp applies this policy all the same",
                ],
                [
                    "framing",
                    "lines up to \(ByteSize(bytes: UInt64(mcp.maxLineBytes))), nesting up to \(mcp.maxDepth), UTF-8, no duplicate keys; stderr \(ByteSize(bytes: UInt64(mcp.stderrBytesPerSecond)))/s",
                ],
                ["calls", "tools/call only for listed tools, arguments checked against their inputSchema"],
                ["in progress", "at most \(mcp.maxConcurrentRequests) requests per session"],
                ["rate limits", mcp.rateLimits.isEmpty ? "none" : mcp.rateLimits.map { "\($0.method) \($0.perMinute)/min" }.joined(separator: ", ")],
            ]
            rows += mcp.contentFilters.map { f in
                [
                    "filter \(f.name)",
                    "\(f.action.rawValue) /\(f.pattern)/ on \(f.tools.isEmpty ? "every tool" : f.tools.joined(separator: ", "))" + (f.action == .sanitize ? " → \(f.replacement)" : ""),
                ]
            }
            if mcp.contentFilters.contains(where: { $0.action == .authorize }) {
                rows.append([
                    "approvals",
                    mcp.approvalKey.map { "signed with the key whose public half is \($0) ([mcp] approval_key)" }
                        ?? style.red("no [mcp] approval_key: every call an authorize filter matches is refused"),
                ])
            }
            section("MCP relay", columns(rows))
        }
        let exposure = p.exposure
        section(
            "Exposure \(scoreText(exposure.score)) / 10.0 (lower is safer)",
            columns(
                exposure.checks.map { c in
                    [c.id, "weight \(c.weight)", String(format2(c.exposure)), style.dim(c.verdict)]
                }))
        let warnings = p.warnings + issues.map(\.description)
        if !warnings.isEmpty { section("Warnings", warnings.map { "  " + style.yellow("!") + " " + printable($0) }.joined(separator: "\n")) }
        out.append(
            p.isEnforceable
                ? style.green("Every control is enforceable on this host.")
                : style.red("Not enforceable on this host: \(p.controls.filter { !$0.enforceable }.map(\.control.name).joined(separator: ", ")). `burrow run` would refuse."))
        return out.joined(separator: "\n")
    }

    /// Rules of one call and action whose conditions differ only in the
    /// compared value become one row (`ioctl allow if arg1 & 0xffffffff in
    /// TCGETS|TCSETS|...`); refused calls with one action become one row
    /// listing them. The JSON keeps every rule with its reason.
    private func groupedRules(_ rules: [SeccompRule]) -> [[String]] {
        var rows: [[String]] = []
        var index: [String: Int] = [:]
        for rule in rules {
            if rule.conditions.isEmpty {
                guard case .notify = rule.action, rule.syscall != "ioctl", rule.syscall != "socket" else {
                    rows.append([rule.syscall, "\(rule.action)", style.dim(rule.reason)])
                    continue
                }
                let key = "calls|\(rule.action)"
                if let i = index[key] {
                    rows[i][2] += " " + rule.syscall
                    continue
                }
                index[key] = rows.count
                rows.append(["refused", "\(rule.action)", rule.syscall])
            } else if rule.conditions.count == 1, let c = rule.conditions.first {
                let key = "arg|\(rule.syscall)|\(rule.action)|\(c.argument)|\(c.operation)|\(c.mask ?? 0)|\(rule.reason)"
                let value = c.valueName ?? "0x" + String(c.value, radix: 16)
                if let i = index[key] {
                    rows[i][1] += "|" + value
                    continue
                }
                index[key] = rows.count
                let lhs = c.operation == .maskedEqual ? "arg\(c.argument) & 0x\(String(c.mask ?? 0, radix: 16))" : "arg\(c.argument)"
                let op = c.operation == .notEqual ? "not in" : "in"
                rows.append([rule.syscall, "\(rule.action) if \(lhs) \(op) ", style.dim(rule.reason)])
                rows[rows.count - 1][1] += value
            } else {
                rows.append([rule.syscall, "\(rule.action) if " + rule.conditions.map(\.description).joined(separator: " && "), style.dim(rule.reason)])
            }
        }
        return rows
    }

    private func scoreText(_ score: Double) -> String {
        let text = format2(score, digits: 1)
        return score < 3 ? style.green(text) : score < 6 ? style.yellow(text) : style.red(text)
    }
}

/// Fixed-point formatting without Foundation's String(format:).
func format2(_ value: Double, digits: Int = 2) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = Int((value * scale).rounded())
    let whole = scaled / Int(scale)
    let frac = String(abs(scaled % Int(scale)))
    return "\(whole)." + String(repeating: "0", count: digits - frac.count) + frac
}

extension String {
    func ifEmpty(_ replacement: String) -> String { isEmpty ? replacement : self }
}
