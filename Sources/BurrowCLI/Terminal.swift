#if canImport(Glibc)
    import Glibc
#endif

/// Text styling for human output: colour only when stdout is a terminal and
/// NO_COLOR is unset.
struct Style: Sendable {
    var enabled: Bool

    static let stdout = Style(enabled: isatty(STDOUT_FILENO) == 1 && getenv("NO_COLOR") == nil)

    func bold(_ s: String) -> String { wrap(s, "1") }
    func dim(_ s: String) -> String { wrap(s, "2") }
    func red(_ s: String) -> String { wrap(s, "31") }
    func green(_ s: String) -> String { wrap(s, "32") }
    func yellow(_ s: String) -> String { wrap(s, "33") }

    private func wrap(_ s: String, _ code: String) -> String { enabled ? "\u{1b}[\(code)m\(s)\u{1b}[0m" : s }
}

/// Left-aligned columns; the last column is not padded.
func columns(_ rows: [[String]], indent: Int = 2, gap: Int = 2) -> String {
    guard let width = rows.map(\.count).max() else { return "" }
    var widths = [Int](repeating: 0, count: width)
    for row in rows {
        for (i, cell) in row.enumerated() where i < width - 1 { widths[i] = max(widths[i], visibleWidth(cell)) }
    }
    return rows.map { row in
        String(repeating: " ", count: indent)
            + row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - visibleWidth(cell) + gap)
            }.joined()
    }.joined(separator: "\n")
}

/// Display width ignoring ANSI escapes.
func visibleWidth(_ s: String) -> Int {
    var width = 0
    var inEscape = false
    for scalar in s.unicodeScalars {
        if inEscape {
            if scalar == "m" { inEscape = false }
        } else if scalar == "\u{1b}" {
            inEscape = true
        } else {
            width += 1
        }
    }
    return width
}

/// Makes untrusted text safe to print: control characters (C0, DEL, C1) and
/// the invisible direction overrides that can disguise text become escapes.
func printable(_ s: String) -> String {
    var out = ""
    for scalar in s.unicodeScalars {
        let v = scalar.value
        if v < 0x20 || v == 0x7f || (0x80..<0xa0).contains(v) || (0x200e...0x200f).contains(v) || (0x202a...0x202e).contains(v) || (0x2066...0x2069).contains(v) {
            out += "\\u{\(String(scalar.value, radix: 16))}"
        } else {
            out.unicodeScalars.append(scalar)
        }
    }
    return out
}
