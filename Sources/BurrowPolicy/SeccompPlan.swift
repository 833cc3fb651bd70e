package import BurrowProfile
import FoundationEssentials

/// What the seccomp filter does with a system call.
package enum SeccompAction: Sendable, Codable, Equatable, CustomStringConvertible {
    case allow
    /// Fails with this errno, silently (expected probes such as clone3).
    case errno(Int32)
    /// Stops the call and asks the supervisor, which records a
    /// SecurityViolation naming the call and answers with this errno.
    case notify(errno: Int32)
    case killProcess

    package var description: String {
        switch self {
        case .allow: "allow"
        case .errno(let e): "errno \(errnoText(e))"
        case .notify(let e): "notify → \(errnoText(e))"
        case .killProcess: "kill process"
        }
    }
}

/// A comparison on one system call argument (`arg1 & 0xffffffff == 0x5412`).
package struct SeccompCondition: Sendable, Codable, Equatable, CustomStringConvertible {
    package enum Operation: String, Sendable, Codable { case equal, notEqual, maskedEqual }
    package var argument: Int
    package var operation: Operation
    package var value: UInt64
    package var mask: UInt64?
    /// A symbolic name for `value` (AF_UNIX, TIOCSTI), for readers.
    package var valueName: String?

    package var description: String {
        let v = valueName ?? "0x" + String(value, radix: 16)
        switch operation {
        case .equal: return "arg\(argument) == \(v)"
        case .notEqual: return "arg\(argument) != \(v)"
        case .maskedEqual: return "arg\(argument) & 0x\(String(mask ?? 0, radix: 16)) == \(v)"
        }
    }
}

package struct SeccompRule: Sendable, Codable, Equatable {
    package var syscall: String
    package var action: SeccompAction
    /// All must hold for the rule to apply (empty: always).
    package var conditions: [SeccompCondition]
    package var reason: String
}

/// The seccomp filter: an allowlist with a notifying default. Its BPF is
/// compiled by libseccomp (`bpf`), and the rules are kept for readers.
package struct SeccompPlan: Sendable, Codable, Equatable {
    /// The only architecture whose system calls are accepted.
    package var architecture: String
    /// Any other architecture or ABI (i386 via int 0x80, x32).
    package var badArchitectureAction: SeccompAction
    /// Every call no rule names, including unknown and future ones.
    package var defaultAction: SeccompAction
    /// Calls allowed without conditions.
    package var allowed: [String]
    /// Calls with conditions or a non-default denial.
    package var rules: [SeccompRule]
    /// Names the installed libseccomp does not know on this architecture (they fall to the default).
    package var unknownToLibseccomp: [String]
    /// Instruction count of the compiled program.
    package var instructions: Int
    /// The compiled `struct sock_filter` array (8 bytes per instruction), as the kernel receives it.
    package var bpf: BPFProgram
    /// How denied calls are reported.
    package var reporting: String
    /// Refusals the profile expects (`permissions.quiet_refusals`): refused
    /// all the same and counted, but not SecurityViolations.
    package var quietRefusals: [QuietRefusal] = []
}

func errnoText(_ e: Int32) -> String {
    let names: [Int32: String] = [1: "EPERM", 2: "ENOENT", 38: "ENOSYS", 97: "EAFNOSUPPORT", 13: "EACCES", 22: "EINVAL", 25: "ENOTTY"]
    return names[e] ?? "errno \(e)"
}

/// A compiled classic-BPF program; base64 in JSON.
package struct BPFProgram: Sendable, Equatable, Codable {
    package var bytes: [UInt8]

    package init(bytes: [UInt8]) { self.bytes = bytes }

    package init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let data = Data(base64Encoded: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not base64"))
        }
        bytes = Array(data)
    }

    package func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(Data(bytes).base64EncodedString())
    }
}
