/// "Did you mean" suggestions, shared by every error message that names a known thing.
public enum Suggestions {
    /// Levenshtein distance between two strings, ignoring case.
    public static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a.lowercased().utf8)
        let b = Array(b.lowercased().utf8)
        if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
        var previous = Array(0...b.count)
        var current = previous
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }

    /// Up to `limit` candidates close to `word` (within a third of its length, at least 2 edits),
    /// closest first.
    public static func nearest(to word: String, in candidates: [String], limit: Int = 3) -> [String] {
        let allowed = max(2, word.count / 3)
        return candidates.map { ($0, distance(word, $0)) }.filter { $0.1 <= allowed }
            .sorted { ($0.1, $0.0) < ($1.1, $1.0) }.prefix(limit).map(\.0)
    }
}
