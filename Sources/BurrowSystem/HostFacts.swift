/// What this host's kernel can enforce, as found by `HostFacts.probe()`.
///
/// `burrow doctor` prints it and `burrow dry-run` uses it for the "enforceable"
/// column: one probe, one source of truth. Every probe that could change the
/// calling process runs in a throwaway child instead.
package struct HostFacts: Codable, Sendable, Equatable {
    /// One probed capability: whether it is there, and what was seen.
    package struct Check: Codable, Sendable, Equatable {
        package var available: Bool
        package var detail: String

        package init(available: Bool, detail: String) {
            self.available = available
            self.detail = detail
        }

        package static func yes(_ detail: String = "ok") -> Check { Check(available: true, detail: detail) }
        package static func no(_ detail: String) -> Check { Check(available: false, detail: detail) }
    }

    package var kernelRelease: String
    package var machine: String
    package var euid: UInt32
    /// uid 0 with the full identity `uid_map`: not root inside some user namespace.
    package var rootInInitialUserNamespace: Bool
    /// Each namespace type created alone (with a user namespace, as Burrow does).
    package var namespaces: [NamespaceKind: Check]
    /// user, pid, mount, ipc, uts, cgroup and net created together in one clone.
    package var namespacesTogether: Check
    /// /proc/sys/user/max_user_namespaces.
    package var maxUserNamespaces: Int?
    package var seccompFilter: Check
    package var seccompUserNotification: Check
    package var landlock: Check
    /// The Landlock ABI version, when Landlock is enabled.
    package var landlockABI: Int?
    package var pidfd: Check
    package var clone3: Check
    package var cloneIntoCgroup: Check
    package var cgroupKill: Check
    package var cgroups: CgroupLayout
    /// Controllers listed in this process's own cgroup2 `cgroup.controllers`.
    package var cgroupV2Controllers: [String]
    /// v1 controllers whose hierarchy has a directory this process may create cgroups in.
    package var cgroupV1WritableControllers: [String]
    package var systemd: Check
    /// /proc/sys/kernel/cap_last_cap: the highest capability number the kernel knows.
    package var capLastCap: Int

    package init(
        kernelRelease: String, machine: String, euid: UInt32, rootInInitialUserNamespace: Bool,
        namespaces: [NamespaceKind: Check], namespacesTogether: Check, maxUserNamespaces: Int?,
        seccompFilter: Check, seccompUserNotification: Check, landlock: Check, landlockABI: Int?,
        pidfd: Check, clone3: Check, cloneIntoCgroup: Check, cgroupKill: Check, cgroups: CgroupLayout,
        cgroupV2Controllers: [String], cgroupV1WritableControllers: [String], systemd: Check, capLastCap: Int
    ) {
        self.kernelRelease = kernelRelease
        self.machine = machine
        self.euid = euid
        self.rootInInitialUserNamespace = rootInInitialUserNamespace
        self.namespaces = namespaces
        self.namespacesTogether = namespacesTogether
        self.maxUserNamespaces = maxUserNamespaces
        self.seccompFilter = seccompFilter
        self.seccompUserNotification = seccompUserNotification
        self.landlock = landlock
        self.landlockABI = landlockABI
        self.pidfd = pidfd
        self.clone3 = clone3
        self.cloneIntoCgroup = cloneIntoCgroup
        self.cgroupKill = cgroupKill
        self.cgroups = cgroups
        self.cgroupV2Controllers = cgroupV2Controllers
        self.cgroupV1WritableControllers = cgroupV1WritableControllers
        self.systemd = systemd
        self.capLastCap = capLastCap
    }

    /// The cgroup backend Burrow would use here and the controllers it offers
    /// beneath Burrow's own cgroup: v2 when this process's cgroup2 directory
    /// has any of memory/pids/cpu, else the v1 hierarchies it may write to.
    package var cgroupBackend: (version: Int, controllers: [String])? {
        let wanted = ["memory", "pids", "cpu", "io", "cpuacct", "freezer"]
        let v2 = cgroupV2Controllers.filter(wanted.contains)
        if !v2.isEmpty { return (2, v2) }
        let v1 = cgroupV1WritableControllers.filter(wanted.contains)
        if !v1.isEmpty { return (1, v1) }
        return nil
    }
}
