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
    /// IPv6 address in brackets, and a port from 1 to 65535 in plain decimal (no sign, no leading zero).
    /// Nothing else (no path, user or query) can ride along into the URLs members build from it. The
    /// document's pattern for it says the same.
    public static func isValidPeerAddress(_ address: String) -> Bool {
        guard address.utf8.count <= 255, let colon = address.lastIndex(of: ":") else { return false }
        let portText = address[address.index(after: colon)...]
        guard let port = Int(portText), (1...65535).contains(port), String(port) == portText else { return false }
        let host = address[..<colon]
        guard !host.isEmpty else { return false }
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), host.count > 2 else { return false }
            return host.dropFirst().dropLast().allSatisfy { $0.isASCII && ($0.isHexDigit || $0 == ":" || $0 == ".") }
        }
        return host.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") }
    }

    /// Passwords are 12 to 72 characters, counted in Unicode code points as the document's
    /// `minLength`/`maxLength` count them (bcrypt's 72-byte limit is handled where they are hashed).
    public static let passwordLengths = 12...72

    /// Whether a new password has an allowed length.
    public static func isValidPassword(_ password: String) -> Bool {
        passwordLengths.contains(password.unicodeScalars.count)
    }

    /// The characters a blank text (a script that would do nothing) consists of: ECMAScript's `\s`
    /// plus U+0085. The document's pattern for a script names exactly this class.
    public static let blankScalars: Set<Unicode.Scalar> = Set(
        [0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF]
            .compactMap(Unicode.Scalar.init) + (0x2000...0x200A).compactMap(Unicode.Scalar.init))

    /// Whether the text has nothing but blank characters (``blankScalars``), or nothing at all.
    public static func isBlank(_ text: String) -> Bool {
        text.unicodeScalars.allSatisfy { blankScalars.contains($0) }
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
