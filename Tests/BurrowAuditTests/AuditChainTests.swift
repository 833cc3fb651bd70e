import BurrowAudit
import BurrowCrypto
import BurrowJSON
import BurrowSQLite
import Testing

/// A log of `count` events, its path, and a raw connection to tamper with it.
func tamperableLog(_ count: Int = 6) throws -> (AuditStore, AuditDatabase) {
    let path = temporaryDatabase()
    let store = try openStore(path)
    for i in 0..<count { try store.append([event(.securityViolation, details: .object(["i": .integer(Int64(i))]))]) }
    #expect(try store.verify().ok)
    return (store, try AuditDatabase(path: path, mode: .readWrite))
}

@Suite("Audit hash chain")
struct AuditChainTests {
    @Test("SHA-256 gives the standard's answers, for contiguous and other collections")
    func sha256KnownAnswers() {
        // FIPS 180-2 examples.
        #expect(SHA256.label("abc".utf8) == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.label([UInt8]()) == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let long = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(Hex.encode(SHA256.hash(long)) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256.hash(long.reversed().reversed()) == SHA256.hash(long))
        #expect(Hex.encode(SHA256.hash([UInt8](repeating: 0x61, count: 1_000_000))) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test("HMAC-SHA256 gives RFC 4231's answers (a key shorter than, and one longer than, a block); digests compare equal only when equal")
    func hmacKnownAnswers() {
        #expect(Hex.encode(HMACSHA256.mac(key: [UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8))) == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        #expect(Hex.encode(HMACSHA256.mac(key: Array("Jefe".utf8), Array("what do ya want for nothing?".utf8))) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        let long = Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)
        #expect(Hex.encode(HMACSHA256.mac(key: [UInt8](repeating: 0xaa, count: 131), long)) == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        let a = SHA256.hash(Array("a".utf8))
        var b = a
        b[31] ^= 1
        #expect(ConstantTime.equal(a, a) && !ConstantTime.equal(a, b) && !ConstantTime.equal(a, Array(a.prefix(31))) && ConstantTime.equal([], []))
    }

    @Test("an edited row is the first broken link")
    func edited() throws {
        let (store, raw) = try tamperableLog()
        try raw.execute("UPDATE events SET details = '{\"i\":99}' WHERE sequence = 3")
        let report = try store.verify()
        #expect(report.problem?.kind == .edited)
        #expect(report.problem?.sequence == 3)
        #expect(report.problem?.message.contains("row 3") == true)
    }

    @Test("an edited context column (principal, uid, time) is caught too")
    func editedContext() throws {
        for sql in [
            "UPDATE events SET principal = 'alice' WHERE sequence = 2", "UPDATE events SET uid = 1000 WHERE sequence = 2", "UPDATE events SET time = time + 1 WHERE sequence = 2",
            "UPDATE events SET type = 'ToolCompleted' WHERE sequence = 2",
        ] {
            let (store, raw) = try tamperableLog()
            try raw.execute(sql)
            #expect(try store.verify().problem == .init(kind: .edited, sequence: 2, message: "row 2 does not match its hash: it was edited"), "\(sql)")
        }
    }

    @Test("a deleted row leaves a gap verify names")
    func deleted() throws {
        let (store, raw) = try tamperableLog()
        try raw.execute("DELETE FROM events WHERE sequence IN (3, 4)")
        let report = try store.verify()
        #expect(report.problem?.kind == .deleted)
        #expect(report.problem?.sequence == 3)
        #expect(report.problem?.message == "rows 3–4 are missing before row 5: deleted outside retention")
    }

    @Test("deleting the first rows is caught (the chain starts from genesis)")
    func deletedHead() throws {
        let (store, raw) = try tamperableLog()
        try raw.execute("DELETE FROM events WHERE sequence = 1")
        #expect(try store.verify().problem?.kind == .deleted)
    }

    @Test("a swapped pair is reported as reordered")
    func swapped() throws {
        let (store, raw) = try tamperableLog()
        // Rows keep their sequence numbers; everything else trades places.
        try raw.execute(
            """
            UPDATE events SET sequence = -1 WHERE sequence = 3;
            UPDATE events SET sequence = 3 WHERE sequence = 4;
            UPDATE events SET sequence = 4 WHERE sequence = -1;
            """)
        let report = try store.verify()
        #expect(report.problem?.kind == .reordered)
        #expect(report.problem?.sequence == 3)
    }

    @Test("a re-linked forgery still breaks the next link; rewriting to the end is caught by an exported head")
    func rewrittenTail() throws {
        let (store, raw) = try tamperableLog()
        let head = try store.verify()
        let last = try #require(head.lastSequence)
        // Truncating the newest rows leaves a consistent chain: only the exported head shows it.
        try raw.execute("DELETE FROM events WHERE sequence = \(last)")
        #expect(try store.verify().ok)
        let anchored = try store.verify(expect: (last, head.head))
        #expect(anchored.problem?.kind == .anchor)
        #expect(anchored.problem?.message.contains("rows were removed from the end") == true)
        #expect(try store.verify(expect: (last - 1, try #require(store.events(AuditQuery(limit: 1)).first?.hash))).ok)
    }

    @Test("retention deletes old rows behind a checkpoint; verification stays green and still catches tampering")
    func retention() throws {
        let path = temporaryDatabase()
        let store = try openStore(path)
        let day: Int64 = 86_400_000_000
        let now: Int64 = 1_800_000_000_000_000
        for i in 0..<10 { try store.append([event(.toolInvoked, invocation: "old\(i)", time: now - 100 * day + Int64(i))]) }
        for i in 0..<5 { try store.append([event(.toolInvoked, invocation: "new\(i)", time: now - day + Int64(i))]) }
        let before = try store.verify()

        let pruned = try store.prune(olderThan: now - 90 * day, now: now)
        #expect(pruned == AuditPruning(deleted: 10, throughSequence: 10, checkpoint: 1))
        let after = try store.verify()
        #expect(after.ok)
        #expect(after.events == 5 && after.firstSequence == 11 && after.pruned == 10 && after.checkpoints == 1)
        #expect(after.head == before.head)
        #expect(try store.prune(olderThan: now - 90 * day, now: now).deleted == 0)

        // New events continue the chain; a second cut chains to the first.
        try store.append([event(.toolCompleted, invocation: "new0", time: now)])
        #expect(try store.prune(olderThan: now - day / 2, now: now).checkpoint == 2)
        #expect(try store.verify().ok)
        // Even when everything is pruned, the next event links to the cut.
        #expect(try store.prune(olderThan: now + 1, now: now).deleted == 1)
        #expect(try store.verify().ok && store.verify().events == 0)
        try store.append([event(.toolInvoked, invocation: "again")])
        #expect(try store.verify().ok && store.events().first?.sequence == 17)

        let raw = try AuditDatabase(path: path, mode: .readWrite)
        try raw.execute("UPDATE checkpoints SET deleted = 1 WHERE id = 1")
        #expect(try store.verify().problem?.kind == .checkpoint)
    }

    @Test("deleting rows right after a checkpoint is caught")
    func deletedAfterCut() throws {
        let path = temporaryDatabase()
        let store = try openStore(path)
        for i in 0..<6 { try store.append([event(.toolInvoked, time: Int64(i) * 1_000_000 + 1_000_000_000_000_000)]) }
        _ = try store.prune(olderThan: 1_000_000_000_000_000 + 2_500_000)
        try AuditDatabase(path: path, mode: .readWrite).execute("DELETE FROM events WHERE sequence = 4")
        #expect(try store.verify().problem == .init(kind: .deleted, sequence: 4, message: "row 4 is missing before row 5: deleted outside retention"))
    }
}
