/// The known name nearest to a misspelt one, if it is plausibly a typo
/// (at most a third of its letters off, and at least two): the hint in
/// "unknown key 'file_reed' (did you mean 'file_read'?)".
package func closest(to word: String, in candidates: some Sequence<String>) -> String? {
    // A name far longer than any candidate is no typo of one (and would cost n·m to compare).
    guard word.utf8.count <= 256 else { return nil }
    let scored = candidates.map { ($0, editDistance(word, $0)) }.filter { $0.1 <= max(2, word.count / 3) }
    return scored.min { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }?.0
}

/// Levenshtein distance over the lowercased UTF-8 bytes.
package func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.lowercased().utf8)
    let b = Array(b.lowercased().utf8)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
            current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
