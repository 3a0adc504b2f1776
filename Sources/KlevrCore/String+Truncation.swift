extension String {
    /// This string cut to at most `limit` bytes of UTF-8, at a character boundary.
    public func truncatedUTF8(to limit: Int) -> String {
        guard utf8.count > limit else { return self }
        var end = utf8.index(utf8.startIndex, offsetBy: max(0, limit))
        // Step back to the start of a character (a UTF-8 index inside a scalar or a grapheme has none).
        while end > startIndex, end.samePosition(in: self) == nil {
            end = utf8.index(before: end)
        }
        return String(self[..<end])
    }
}
