/// Field checks shared by the manager (API input) and the CLI (before sending).
public enum Validation {
    /// Zone names: 1–63 of lowercase letters, digits and `-`, starting with a letter or digit.
    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.unicodeScalars.count <= 63 else { return false }
        guard isLowerAlnum(first) else { return false }
        return name.unicodeScalars.allSatisfy { isLowerAlnum($0) || $0 == "-" }
    }

    /// Parameter names become environment variables `KLEVR_PARAM_<NAME>`: letters, digits and `_`,
    /// not starting with a digit, at most 64 characters.
    public static func isValidParameterName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.unicodeScalars.count <= 64 else { return false }
        guard isLetter(first) || first == "_" else { return false }
        return name.unicodeScalars.allSatisfy { isLetter($0) || isDigit($0) || $0 == "_" }
    }

    /// A peer address: `host:port` with a host name or IPv4 address (letters, digits, `.`, `-`) or an
    /// IPv6 address in brackets, and a port from 1 to 65535. Nothing else (no path, user or query) can
    /// ride along into the URLs members build from it.
    public static func isValidPeerAddress(_ address: String) -> Bool {
        guard address.utf8.count <= 255, let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
            (1...65535).contains(port)
        else { return false }
        let host = address[..<colon]
        guard !host.isEmpty else { return false }
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), host.count > 2 else { return false }
            return host.dropFirst().dropLast().allSatisfy { $0.isASCII && ($0.isHexDigit || $0 == ":" || $0 == ".") }
        }
        return host.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") }
    }

    /// Identifiers are lowercase UUIDs.
    public static func isValidID(_ id: String) -> Bool {
        let scalars = Array(id.unicodeScalars)
        guard scalars.count == 36 else { return false }
        for (index, scalar) in scalars.enumerated() {
            if [8, 13, 18, 23].contains(index) {
                guard scalar == "-" else { return false }
            } else {
                guard isDigit(scalar) || ("a"..."f").contains(scalar) else { return false }
            }
        }
        return true
    }

    private static func isLowerAlnum(_ s: Unicode.Scalar) -> Bool { ("a"..."z").contains(s) || isDigit(s) }
    private static func isLetter(_ s: Unicode.Scalar) -> Bool { ("a"..."z").contains(s) || ("A"..."Z").contains(s) }
    private static func isDigit(_ s: Unicode.Scalar) -> Bool { ("0"..."9").contains(s) }
}
