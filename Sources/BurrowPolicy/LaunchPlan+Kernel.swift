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
    }

    private var rules: [Int32: [SeccompRule]] = [:]
    private var defaultErrno: Int32

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
    }

    /// The answer for call `nr` with `arguments` (as the notification carries them).
    package func answer(syscall nr: Int32, arguments: [UInt64]) -> Answer {
        for rule in rules[nr] ?? [] where rule.conditions.allSatisfy({ $0.holds(arguments) }) {
            if case .notify(let e) = rule.action { return Answer(syscall: rule.syscall, errno: e, reason: rule.reason) }
        }
        return Answer(syscall: Self.name(of: nr), errno: defaultErrno, reason: "not in the allowlist")
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
