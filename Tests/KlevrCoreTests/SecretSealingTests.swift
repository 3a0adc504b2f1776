import Foundation

#if canImport(Glibc)
import Glibc
#endif
import KlevrCore
import Testing

@Suite struct SecretSealingTests {
    let secret = Data("p@ssw0rd-of-the-prod-database".utf8)

    @Test func sealsAndOpens() throws {
        let box = SecretBox(current: .generate())
        let first = try box.seal(secret, context: "credential:1")
        let second = try box.seal(secret, context: "credential:1")
        #expect(first != second)  // a fresh nonce each time
        #expect(first.count == 1 + 8 + 12 + secret.count + 16)
        #expect(first.range(of: secret) == nil)
        #expect(first.first == SecretBox.formatVersion)
        #expect(try box.open(first, context: "credential:1") == secret)
        #expect(try box.open(second, context: "credential:1") == secret)
        #expect(try box.open(box.seal(Data(), context: "c"), context: "c") == Data())
    }

    @Test func anotherContextDoesNotOpen() throws {
        let box = SecretBox(current: .generate())
        let sealed = try box.seal(secret, context: "credential:1")
        #expect(throws: SecretBoxError.authenticationFailed) { try box.open(sealed, context: "credential:2") }
    }

    @Test func everyAlteredByteIsRefused() throws {
        let box = SecretBox(current: .generate())
        let sealed = try box.seal(secret, context: "c")
        for index in sealed.indices {
            var altered = sealed
            altered[index] ^= 0x01
            do {
                _ = try box.open(altered, context: "c")
                Issue.record("byte \(index) altered and still opened")
            } catch {
                switch index {
                case 0: #expect(error == .malformed("unknown format version 0"))
                case 1...8: #expect(error == .unknownKey(id: Array(altered[1...8]).map { String(format: "%02x", $0) }.joined()))
                default: #expect(error == .authenticationFailed)
                }
            }
        }
        #expect(throws: SecretBoxError.self) { try box.open(sealed.dropLast(), context: "c") }
        #expect(throws: SecretBoxError.malformed("36 bytes is shorter than the 37-byte minimum")) {
            try box.open(Data(sealed.prefix(36)), context: "c")
        }
    }

    @Test func aWrongKeyDoesNotOpen() throws {
        let sealed = try SecretBox(current: .generate()).seal(secret, context: "c")
        let other = MasterKey.generate()
        #expect(throws: SecretBoxError.unknownKey(id: try SecretBox.keyID(of: sealed).map { String(format: "%02x", $0) }.joined())) {
            try SecretBox(current: other).open(sealed, context: "c")
        }
        #expect(throws: SecretBoxError.self) { try SecretBox.rotate(sealed, context: "c", from: other, to: .generate()) }
    }

    @Test func rotationReencryptsUnderTheNewKey() throws {
        let old = MasterKey.generate()
        let new = MasterKey.generate()
        let sealedOld = try SecretBox(current: old).seal(secret, context: "webhook:9")
        let box = SecretBox(current: new, previous: [old])
        #expect(try box.needsReseal(sealedOld))
        #expect(try box.open(sealedOld, context: "webhook:9") == secret)
        let resealed = try box.reseal(sealedOld, context: "webhook:9")
        #expect(try SecretBox.keyID(of: resealed) == new.id)
        #expect(try !box.needsReseal(resealed))
        #expect(try box.reseal(resealed, context: "webhook:9") == resealed)
        // Once rotated, the old key is no longer needed.
        #expect(try SecretBox(current: new).open(resealed, context: "webhook:9") == secret)
        let rotated = try SecretBox.rotate(sealedOld, context: "webhook:9", from: old, to: new)
        #expect(try SecretBox(current: new).open(rotated, context: "webhook:9") == secret)
        #expect(throws: SecretBoxError.self) { try SecretBox(current: old).open(rotated, context: "webhook:9") }
    }

    @Test func keyIDsAreStableAndDistinct() throws {
        let bytes = Data((0..<32).map { UInt8($0) })
        #expect(try MasterKey(bytes: bytes).id == MasterKey(bytes: bytes).id)
        #expect(try MasterKey(bytes: bytes).idHex.count == 16)
        #expect(MasterKey.generate().id != MasterKey.generate().id)
        #expect(throws: MasterKeyError.invalidKeyLength(31)) { try MasterKey(bytes: Data(count: 31)) }
    }
}

@Suite struct MasterKeyFileTests {
    /// A fresh directory, removed after `body`.
    func withDirectory(_ body: (String) throws -> Void) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("klevr-masterkey-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try body(directory)
    }

    @Test func createdAtFirstUseWithMode0600AndLoadedAfterwards() throws {
        try withDirectory { directory in
            let path = directory + "/master.key"
            let created = try MasterKey.loadOrCreate(at: path)
            #expect(PrivateFile.mode(path) == 0o600)
            #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == 32)
            #expect(try MasterKey.loadOrCreate(at: path).id == created.id)
            #expect(try MasterKey.load(from: path).id == created.id)
            // A value sealed before a restart opens after it.
            let sealed = try SecretBox(current: created).seal(Data("x".utf8), context: "c")
            #expect(try SecretBox(current: MasterKey.load(from: path)).open(sealed, context: "c") == Data("x".utf8))
        }
    }

    @Test(arguments: [0o640, 0o604, 0o644, 0o660, 0o700, 0o601])
    func refusesAFileOthersCanAccess(mode: Int) throws {
        try withDirectory { directory in
            let path = directory + "/master.key"
            _ = try MasterKey.loadOrCreate(at: path)
            #expect(chmod(path, mode_t(mode)) == 0)
            let expectedMode = mode
            if mode & 0o077 == 0 {
                #expect(try MasterKey.load(from: path).id.count == 8)
            } else {
                #expect(throws: MasterKeyError.tooOpen(path: path, mode: expectedMode)) { try MasterKey.loadOrCreate(at: path) }
            }
        }
    }

    @Test func refusesAFileOfTheWrongSize() throws {
        try withDirectory { directory in
            for size in [0, 31, 33, 64] {
                let path = directory + "/key-\(size)"
                try PrivateFile.create(path, contents: Data(count: size))
                #expect(throws: MasterKeyError.wrongSize(path: path, size: size)) { try MasterKey.loadOrCreate(at: path) }
            }
        }
    }

    @Test func refusesSymbolicLinksAndDirectories() throws {
        try withDirectory { directory in
            let target = directory + "/real.key"
            _ = try MasterKey.loadOrCreate(at: target)
            let link = directory + "/link.key"
            try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
            #expect(throws: MasterKeyError.notARegularFile(path: link)) { try MasterKey.loadOrCreate(at: link) }
            let folder = directory + "/folder"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
            #expect(throws: MasterKeyError.notARegularFile(path: folder)) { try MasterKey.load(from: folder) }
        }
    }

    @Test func aMissingDirectoryIsAClearError() {
        let path = "/nonexistent-\(UUID().uuidString)/master.key"
        do {
            _ = try MasterKey.loadOrCreate(at: path)
            Issue.record("created \(path)")
        } catch {
            #expect(error.description.contains("cannot create the master key file \(path)"))
        }
    }

    @Test func errorMessagesSayWhatToDo() {
        #expect(MasterKeyError.tooOpen(path: "/d/master.key", mode: 0o644).description
            == "the master key file /d/master.key has mode 644: group and others must have no access (chmod 600 /d/master.key)")
        #expect(MasterKeyError.wrongSize(path: "/k", size: 3).description.contains("holds 3 bytes, not 32"))
    }
}
