import BurrowProfile
import CSeccomp

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

// The numbers behind the plan's names, for the runtime that hands them to the
// kernel. Kept here so the names (what dry-run shows) and the numbers (what
// run applies) come from one table.

/// Answers seccomp user notifications the way the plan says: which rule a
/// stopped call hit, and the errno it gets.
package struct SeccompResponder: Sendable {
    package struct Answer: Sendable, Equatable {
        package var syscall: String
        package var errno: Int32
        package var reason: String
        /// Named in `permissions.quiet_refusals`: counted, not a SecurityViolation.
        package var quiet: Bool = false
    }

    private var rules: [Int32: [SeccompRule]] = [:]
    private var defaultErrno: Int32
    /// Quiet calls by number, each with the families it is quiet for (nil: any).
    private var quiet: [Int32: [Int32?]] = [:]

    package init(plan: SeccompPlan) {
        if case .notify(let e) = plan.defaultAction { defaultErrno = e } else { defaultErrno = SeccompPolicy.ENOSYS }
        for rule in plan.rules {
            guard case .notify = rule.action else { continue }
            let nr = seccomp_syscall_resolve_name(rule.syscall)
            guard nr >= 0 else { continue }
            rules[nr, default: []].append(rule)
        }
        // Conditional rules first: they are the more specific (ioctl TIOCSTI before any ioctl).
        for key in rules.keys { rules[key]?.sort { !$0.conditions.isEmpty && $1.conditions.isEmpty } }
        for q in plan.quietRefusals {
            guard let nr = Self.number(of: q.syscall) else { continue }
            quiet[nr, default: []].append(q.family?.rawValue)
        }
    }

    /// The answer for call `nr` with `arguments` (as the notification carries them).
    package func answer(syscall nr: Int32, arguments: [UInt64]) -> Answer {
        var answer = Answer(syscall: Self.name(of: nr), errno: defaultErrno, reason: "not in the allowlist")
        for rule in rules[nr] ?? [] where rule.conditions.allSatisfy({ $0.holds(arguments) }) {
            if case .notify(let e) = rule.action {
                answer = Answer(syscall: rule.syscall, errno: e, reason: rule.reason)
                break
            }
        }
        // A family is the first argument of socket and socketpair.
        answer.quiet = quiet[nr]?.contains { $0 == nil || arguments.first.map { a in Int32(truncatingIfNeeded: a) } == $0 } ?? false
        // A clone that asks for a namespace is never a harmless probe.
        if answer.quiet, nr == Self.clone, let flags = arguments.first, flags & SeccompPolicy.CLONE_NEW_ANY != 0 { answer.quiet = false }
        return answer
    }

    private static let clone = number(of: "clone") ?? -1

    /// libseccomp's number for a system call name on this architecture, or nil.
    package static func number(of name: String) -> Int32? {
        let nr = seccomp_syscall_resolve_name(name)
        return nr >= 0 ? nr : nil
    }

    package enum Lookup: Equatable {
        case number(Int32)
        /// A call of other architectures (libseccomp's pseudo-numbers: vfork on aarch64).
        case notOnThisArchitecture
        case unknown
    }

    /// What libseccomp knows of `name` here.
    package static func lookup(_ name: String) -> Lookup {
        let nr = seccomp_syscall_resolve_name(name)
        if nr >= 0 { return .number(nr) }
        return nr == -1 ? .unknown : .notOnThisArchitecture  // -1 is __NR_SCMP_ERROR
    }

    /// libseccomp's name for a native system call number, or "syscall N".
    package static func name(of nr: Int32) -> String {
        guard let raw = seccomp_syscall_resolve_num_arch(UInt32(SCMP_ARCH_NATIVE), nr) else { return "syscall \(nr)" }
        defer { free(raw) }
        return String(cString: raw)
    }
}

extension SeccompCondition {
    func holds(_ arguments: [UInt64]) -> Bool {
        guard argument < arguments.count else { return false }
        let a = arguments[argument]
        switch operation {
        case .equal: return a == value
        case .notEqual: return a != value
        case .maskedEqual: return a & (mask ?? ~0) == value
        }
    }
}
