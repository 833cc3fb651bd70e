import ArgumentParser
import BurrowAudit
import BurrowSQLite
import BurrowSystem
import FoundationEssentials

/// `burrow doctor`: what this host can enforce.
struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Probe this host: kernel, namespaces, seccomp, Landlock, pidfd, clone3, cgroups, systemd.",
        discussion: """
            Every probe that could change a process runs in a throwaway child. The same probe decides \
            the "enforceable" column of `burrow dry-run`, which reuses the children's answers from the \
            run cache (/run/burrow/cache) while nothing they depend on has changed; doctor always \
            probes afresh and refreshes that cache. BURROW_RUN_CACHE=off turns the cache off.
            """)

    @Flag(name: .long, help: "Print the probe as JSON.")
    var json = false

    func run() throws {
        let facts = HostFacts.probe(reuse: false)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(DoctorReport(host: facts, sqlite: SQLiteLibrary.version)), as: UTF8.self))
            return
        }
        let style = Style.stdout
        func mark(_ c: HostFacts.Check) -> String { c.available ? style.green("ok") : style.red("no") }
        var rows: [[String]] = [
            ["", "kernel", "\(facts.kernelRelease) (\(facts.machine))"],
            [
                facts.rootInInitialUserNamespace ? style.green("ok") : style.yellow("--"), "root",
                facts.rootInInitialUserNamespace ? "euid 0 in the initial user namespace" : "euid \(facts.euid): `burrow run` needs root (or burrowd)",
            ],
        ]
        for kind in NamespaceKind.allCases {
            let c = facts.namespaces[kind] ?? .no("not probed")
            rows.append([mark(c), "\(kind.rawValue) namespace", c.detail])
        }
        rows.append([mark(facts.namespacesTogether), "sandbox namespaces", facts.namespacesTogether.detail])
        rows.append(["", "user namespaces", "max_user_namespaces \(facts.maxUserNamespaces.map(String.init) ?? "unknown")"])
        rows.append([mark(facts.seccompFilter), "seccomp filter", facts.seccompFilter.detail])
        rows.append([mark(facts.seccompUserNotification), "seccomp notify", facts.seccompUserNotification.detail])
        rows.append([mark(facts.landlock), "landlock", facts.landlock.detail])
        rows.append([mark(facts.pidfd), "pidfd", facts.pidfd.detail])
        rows.append([mark(facts.clone3), "clone3", facts.clone3.detail])
        // Restricted network: the egress proxy.
        let net = facts.namespaces[.net] ?? .no("not probed")
        rows.append([
            mark(net), "egress proxy", net.available ? "listener inside each restricted sandbox's own network namespace: HTTP CONNECT, HTTP, SOCKS5" : "needs network namespaces: \(net.detail)",
        ])
        let landlockNet = (facts.landlockABI ?? 0) >= 4
        rows.append([
            landlockNet ? style.green("ok") : style.yellow("--"), "landlock network",
            landlockNet ? "TCP connect inside a restricted sandbox allowed to the proxy's port only" : "Landlock ABI < 4: the namespace alone (loopback only) keeps traffic in",
        ])
        let servers = ((try? FileIO.read("/etc/resolv.conf")) ?? "").split(separator: "\n").filter { $0.hasPrefix("nameserver") }.map { $0.split(separator: " ").last.map(String.init) ?? "" }
        let resolves: Bool = if case .success = Net.resolve("localhost") { true } else { false }
        rows.append([
            resolves ? style.green("ok") : style.yellow("--"), "proxy resolver",
            "the host's (nameservers: \(servers.isEmpty ? "none" : servers.joined(separator: " "))); sandboxes have none",
        ])
        rows.append(["", "non-proxy traffic", "blocked in restricted sandboxes (no route out); the veth + nftables mode is not built"])
        rows.append([mark(facts.cloneIntoCgroup), "CLONE_INTO_CGROUP", facts.cloneIntoCgroup.detail])
        rows.append([mark(facts.cgroupKill), "cgroup.kill", facts.cgroupKill.detail])
        let layout = facts.cgroups
        rows.append(["", "cgroup layout", "\(layout.mode.rawValue); cgroup2 at \(layout.v2MountPoint ?? "-"), own cgroup \(layout.v2OwnPath ?? "-")"])
        let limiting = facts.cgroupV2Controllers.filter { ["memory", "pids", "cpu"].contains($0) }
        rows.append([
            limiting.count == 3 ? style.green("ok") : style.yellow("--"), "cgroup2 controllers",
            (facts.cgroupV2Controllers.isEmpty ? "none" : facts.cgroupV2Controllers.joined(separator: " "))
                + (limiting.count == 3 ? "" : " (memory, pids and cpu are needed for v2 limits)"),
        ])
        for h in layout.v1 {
            let writable = facts.cgroupV1WritableControllers.contains { h.controllers.contains($0) }
            rows.append([writable ? style.green("ok") : style.yellow("--"), "cgroup v1 " + h.controllers.joined(separator: ","), "\(h.ownDirectory)" + (writable ? "" : " (not writable)")])
        }
        if let backend = facts.cgroupBackend {
            rows.append([style.green("ok"), "cgroup backend", "v\(backend.version): \(backend.controllers.joined(separator: " "))"])
        } else {
            rows.append([style.red("no"), "cgroup backend", "no memory/pids/cpu controller beneath Burrow's own cgroup: resource limits cannot be enforced"])
        }
        rows.append([facts.systemd.available ? style.green("ok") : style.yellow("--"), "systemd", facts.systemd.detail])
        rows.append(["", "capabilities", "cap_last_cap \(facts.capLastCap)"])
        rows.append(["", "sqlite", "\(SQLiteLibrary.version)\(SQLiteLibrary.isThreadSafe ? ", thread-safe" : ", NOT thread-safe")"])
        print(style.bold("Burrow doctor"))
        print(columns(rows))
    }
}

struct DoctorReport: Codable {
    var host: HostFacts
    var sqlite: String
}
