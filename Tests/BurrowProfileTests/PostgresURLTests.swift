import BurrowProfile
import Testing

/// `[audit] central_url`: libpq's URL form, with no password in it and TLS
/// verified except to loopback or a Unix socket.
struct PostgresURLTests {
    func problem(_ text: String) -> String {
        do {
            _ = try PostgresURL(parsing: text)
            return "parsed"
        } catch {
            return error.description
        }
    }

    @Test("host, port, database and TLS read as libpq writes them; a Unix socket directory; IPv6")
    func parses() throws {
        let remote = try PostgresURL(parsing: "postgresql://burrow@db.example.org:6543/registry")
        #expect(remote.host == "db.example.org" && remote.port == 6543 && remote.database == "registry" && remote.tls == .verifyFull && remote.user == "burrow")
        let local = try PostgresURL(parsing: "postgres://burrow@127.0.0.1/burrow?sslmode=disable")
        #expect(local.port == 5432 && local.tls == .disable)
        let socket = try PostgresURL(parsing: "postgresql://burrow@/burrow?host=/run/postgresql")
        #expect(socket.socketPath == "/run/postgresql/.s.PGSQL.5432" && socket.host == nil && socket.tls == .disable)
        let v6 = try PostgresURL(parsing: "postgresql://burrow@[::1]:5433/burrow?sslmode=disable")
        #expect(v6.host == "::1" && v6.port == 5433 && v6.description == "postgresql://burrow@[::1]:5433/burrow?sslmode=disable")
        #expect(try PostgresURL(parsing: "postgresql://burrow@db/").database == "burrow")
    }

    @Test("refused: a password in the URL, TLS off over the network, sslmode=require (it verifies nothing), other schemes and keys, bad ports")
    func refuses() {
        #expect(problem("postgresql://burrow:secret@db/burrow").contains("password does not go in the URL"))
        #expect(problem("postgresql://burrow@db.example.org/burrow?sslmode=disable").contains("only to loopback"))
        // A name that starts like a loopback address is a name.
        #expect(problem("postgresql://burrow@127.evil.example/burrow?sslmode=disable").contains("only to loopback"))
        #expect(problem("postgresql://burrow@127.1.2.3/burrow?sslmode=disable") == "parsed")
        #expect(problem("postgresql://burrow@db/burrow?sslmode=require").contains("verify-full"))
        #expect(problem("mysql://burrow@db/burrow").contains("expected postgresql://"))
        #expect(problem("postgresql://burrow@db/burrow?application_name=x").contains("only sslmode and host"))
        #expect(problem("postgresql://burrow@db:99999/burrow").contains("not a port"))
        #expect(problem("postgresql://db/burrow").contains("give the user"))
        #expect(problem("postgresql://burrow@db/bur;row").contains("not a database name"))
    }
}
