/// The steps of the child between clone and execve, mirroring `enum brw_stage`
/// in brw_child.h one to one (a test keeps them in step).
package enum ChildStage: UInt32, Sendable, CaseIterable {
    case waitParent = 1
    case session, mounts, pivotRoot, remountRoot, hostname, loopback, chdir, rlimits
    case landlockRules, boundingSet, securebits, setgroups, setgid, setuid, capabilities, parentDeath
    case noNewPrivileges, landlock, forkInit, closeDescriptors, seccomp, handshake, exec, stdio, cgroupJoin
    case listener = 100
    case held

    /// What the child was doing, in an operator's words.
    package var summary: String {
        switch self {
        case .waitParent: "waiting for the supervisor"
        case .session: "setsid (detach from the terminal)"
        case .mounts: "building the mount table"
        case .pivotRoot: "pivot_root into the new root"
        case .remountRoot: "making the new root read-only"
        case .hostname: "setting the host name"
        case .loopback: "bringing up loopback"
        case .chdir: "entering the working directory"
        case .rlimits: "setting rlimits"
        case .landlockRules: "adding Landlock rules"
        case .boundingSet: "dropping the capability bounding set"
        case .securebits: "setting securebits"
        case .setgroups: "clearing supplementary groups"
        case .setgid: "setresgid"
        case .setuid: "setresuid"
        case .capabilities: "setting the capability sets"
        case .parentDeath: "arming the parent-death signal"
        case .noNewPrivileges: "setting no_new_privs"
        case .landlock: "enforcing Landlock"
        case .forkInit: "starting the tool under the sandbox's init"
        case .closeDescriptors: "closing inherited descriptors"
        case .seccomp: "loading the seccomp filter"
        case .handshake: "handing the seccomp listener to the supervisor (or taking its argv)"
        case .exec: "execve"
        case .stdio: "connecting standard input and output"
        case .cgroupJoin: "joining the invocation's cgroups"
        case .listener: "seccomp listener"
        case .held: "waiting, built, for its request"
        }
    }
}
