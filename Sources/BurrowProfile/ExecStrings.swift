/// What execve(2) takes as given. Every argument and environment string
/// reaches the kernel as a C string, so one holding a NUL would be cut
/// there while the audit log recorded it whole: such a value is refused,
/// never truncated. The sizes are the kernel's (MAX_ARG_STRLEN) and a total
/// well inside ARG_MAX for any stack limit a sandbox is given.
package enum ExecStrings {
    /// One argument or NAME=value, without its NUL (MAX_ARG_STRLEN is 32 pages).
    package static let maxStringBytes = 131_071
    /// Every argument and environment string together, with their pointers.
    package static let maxTotalBytes = 1 << 20
    /// Arguments and environment entries, each.
    package static let maxCount = 8192

    /// Why `argv` and `environment` cannot reach execve as given, or nil.
    /// `what` names the argument list in the message ("argv", "arguments").
    package static func problem(argv: [String], what: String = "argv", environment: [(name: String, value: String)] = []) -> String? {
        guard argv.count <= maxCount else { return "\(what): \(argv.count) arguments, more than the \(maxCount) allowed" }
        guard environment.count <= maxCount else { return "environment: \(environment.count) variables, more than the \(maxCount) allowed" }
        var total = 0
        for (i, arg) in argv.enumerated() {
            if arg.utf8.contains(0) { return "\(what)[\(i)] contains the NUL character U+0000, which cannot reach execve: refused rather than cut" }
            guard arg.utf8.count <= maxStringBytes else { return "\(what)[\(i)] is \(arg.utf8.count) bytes; the kernel takes at most \(maxStringBytes) per argument" }
            total += arg.utf8.count + 1 + 8
        }
        for (name, value) in environment {
            if let problem = environmentNameProblem(name) { return problem }
            if value.utf8.contains(0) { return "environment \(name) contains the NUL character U+0000 in its value, which cannot reach execve: refused rather than cut" }
            let size = name.utf8.count + 1 + value.utf8.count
            guard size <= maxStringBytes else { return "environment \(name) is \(size) bytes; the kernel takes at most \(maxStringBytes) per variable" }
            total += size + 1 + 8
        }
        guard total <= maxTotalBytes else { return "\(what) and environment take \(total) bytes, more than the \(maxTotalBytes) allowed" }
        return nil
    }

    /// Why `name` cannot be an environment variable's name, or nil.
    package static func environmentNameProblem(_ name: String) -> String? {
        if name.isEmpty { return "an environment variable with an empty name" }
        if name.utf8.contains(0) || name.utf8.contains(UInt8(ascii: "=")) {
            return "environment variable name \(quoted(name)) contains '=' or the NUL character: refused rather than cut"
        }
        return nil
    }

    /// A short, escaped rendering of a caller's string for messages.
    static func quoted(_ s: String) -> String {
        var out = ""
        for scalar in s.unicodeScalars.prefix(64) {
            out += scalar.value < 0x20 || scalar.value == 0x7f ? "\\u{\(String(scalar.value, radix: 16))}" : String(scalar)
        }
        return "'\(out)\(s.unicodeScalars.count > 64 ? "…" : "")'"
    }
}
