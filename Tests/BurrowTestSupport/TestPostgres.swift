import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A PostgreSQL server the tests start themselves, from Debian's packages:
/// initdb into a temporary directory, a private port on loopback (and a
/// Unix socket in the same directory), run as the `postgres` user (the
/// server refuses root), password authentication (SCRAM) for the user
/// `burrow`; stopped and removed after. `stop()` and `start()` again on
/// the same data make an outage.
package final class TestPostgres: @unchecked Sendable {
    package let directory: String
    package let port: Int
    package let password = "burrow-test-" + UUID().uuidString.prefix(8).lowercased()
    /// A file holding the password, root's, 0600 (what `central_password_file` names).
    package var passwordFile: String { directory + "/password" }
    package var url: String { "postgresql://burrow@127.0.0.1:\(port)/burrow?sslmode=disable" }
    private var server: Subprocess.Running?
    let binaries: String
    let user = "postgres"

    /// The directory of Debian's server binaries (initdb, postgres), newest version first.
    package static var binaries: String? {
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []).compactMap(Int.init).sorted(by: >)
        return versions.map { "/usr/lib/postgresql/\($0)/bin" }.first { access($0 + "/postgres", X_OK) == 0 && access($0 + "/initdb", X_OK) == 0 }
    }

    /// Installed (Debian's postgresql package: .ci/run installs it), with its `postgres` user.
    package static var requirement: Requirement {
        let why: String? =
            binaries == nil ? "no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql)" : getpwnam("postgres") == nil ? "no postgres user" : nil
        return Requirement(description: "a PostgreSQL server", whyUnmet: why)
    }

    package init() throws {
        try Self.requirement.check()
        binaries = Self.binaries ?? ""
        directory = try Subprocess.temporaryDirectory()
        chmod(directory, 0o755)
        port = Int.random(in: 20_000..<60_000)
        guard let pw = getpwnam(user) else { throw RequirementUnmet(description: "no postgres user") }
        let (uid, gid) = (pw.pointee.pw_uid, pw.pointee.pw_gid)
        for sub in ["data", "run"] {
            mkdir(directory + "/" + sub, 0o700)
            chown(directory + "/" + sub, uid, gid)
        }
        try password.write(toFile: directory + "/run/pwfile", atomically: false, encoding: .utf8)
        chown(directory + "/run/pwfile", uid, gid)
        try (password + "\n").write(toFile: passwordFile, atomically: false, encoding: .utf8)
        chmod(passwordFile, 0o600)
        let made = try asPostgres([binaries + "/initdb", "-D", directory + "/data", "-U", "burrow", "--auth=scram-sha-256", "--pwfile=" + directory + "/run/pwfile", "-E", "UTF8", "--no-sync"])
        guard made.status == 0 else { throw RequirementUnmet(description: "initdb failed: \(made.stderr)") }
        try start()
        let created = try psql("CREATE DATABASE burrow", database: "postgres")
        guard created.status == 0 else { throw RequirementUnmet(description: "CREATE DATABASE failed: \(created.stderr)") }
    }

    deinit {
        try? stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    func asPostgres(_ argv: [String]) throws -> Subprocess.Result {
        try Subprocess.run(["/usr/bin/setpriv", "--reuid=\(user)", "--regid=\(user)", "--clear-groups", "--"] + argv, directory: directory)
    }

    /// Starts the server and waits until it accepts connections.
    package func start() throws {
        guard server == nil else { return }
        let p = try Subprocess.start(
            [
                // --pdeathsig: a test process that dies takes its server with it.
                "/usr/bin/setpriv", "--reuid=\(user)", "--regid=\(user)", "--clear-groups", "--pdeathsig", "INT", "--", binaries + "/postgres", "-D", directory + "/data", "-p", "\(port)", "-k",
                directory + "/run", "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=50",
            ], directory: directory)
        server = p
        for _ in 0..<400 {
            if (try? psql("SELECT 1", database: "postgres"))?.status == 0 { return }
            usleep(25_000)
        }
        kill(p.pid, SIGKILL)
        server = nil
        throw RequirementUnmet(description: "PostgreSQL did not start: \((try? p.finish())?.stderr ?? "")")
    }

    /// Stops the server (fast shutdown) and waits for it.
    package func stop() throws {
        guard let p = server else { return }
        kill(p.pid, SIGINT)
        _ = try p.finish()
        server = nil
    }

    /// Runs SQL with psql; the rows, unaligned, one per line.
    package func psql(_ sql: String, database: String = "burrow") throws -> Subprocess.Result {
        try Subprocess.run(
            ["/usr/bin/psql", "-h", "127.0.0.1", "-p", "\(port)", "-U", "burrow", "-d", database, "-Atqc", sql], environment: ["PGPASSWORD": password, "PGCONNECT_TIMEOUT": "2"])
    }

    /// One value of a query.
    package func value(_ sql: String) throws -> String {
        let r = try psql(sql)
        guard r.status == 0 else { throw RequirementUnmet(description: "psql: \(r.stderr)") }
        return r.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
