#if canImport(Glibc)
    import Glibc
#endif

/// Where a PostgreSQL database is, as libpq's URLs write it:
/// `postgresql://USER@HOST:PORT/DATABASE?sslmode=verify-full`, or a Unix
/// socket directory with `?host=/run/postgresql`. The password is never in
/// it (a policy file is readable by many; the password comes from a file of
/// its own), and TLS is verified or, on loopback and Unix sockets only, off.
package struct PostgresURL: Sendable, Equatable, Codable, CustomStringConvertible {
    package enum TLS: String, Sendable, Equatable, Codable {
        /// TLS with the server's certificate checked against the CA (the host policy's CA file, else the system's roots) and its name.
        case verifyFull = "verify-full"
        /// No TLS: loopback and Unix sockets only.
        case disable
    }

    package var user: String
    /// A host name or address; nil with `socketDirectory`.
    package var host: String?
    package var port: Int
    /// The directory of the server's Unix socket (`.s.PGSQL.PORT` in it).
    package var socketDirectory: String?
    package var database: String
    package var tls: TLS

    /// The socket file itself, for a Unix socket.
    package var socketPath: String? { socketDirectory.map { "\($0)/.s.PGSQL.\(port)" } }

    /// The URL without anything secret (there is nothing secret in it).
    package var description: String {
        let place = host.map { $0.contains(":") ? "[\($0)]" : $0 } ?? ""
        var query = "sslmode=\(tls.rawValue)"
        if let socketDirectory { query += "&host=\(socketDirectory)" }
        return "postgresql://\(user)@\(place):\(port)/\(database)?\(query)"
    }

    /// Parses `text`; the reason it is not one otherwise.
    package init(parsing text: String) throws(Problem) {
        var rest = Substring(text)
        guard let scheme = ["postgresql://", "postgres://"].first(where: { rest.hasPrefix($0) }) else {
            throw Problem("expected postgresql://USER@HOST:PORT/DATABASE (found '\(text.prefix(40))')")
        }
        rest = rest.dropFirst(scheme.count)
        var query: [String: String] = [:]
        if let mark = rest.firstIndex(of: "?") {
            for pair in rest[rest.index(after: mark)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, ["sslmode", "host"].contains(parts[0]) else { throw Problem("'\(pair)': only sslmode and host are understood") }
                query[String(parts[0])] = String(parts[1])
            }
            rest = rest[..<mark]
        }
        guard let at = rest.firstIndex(of: "@") else { throw Problem("give the user: postgresql://USER@HOST/DATABASE") }
        let user = rest[..<at]
        guard !user.contains(":") else { throw Problem("the password does not go in the URL: put it in a file of its own (central_password_file / password_file)") }
        guard !user.isEmpty, user.allSatisfy({ $0.isLetter || $0.isNumber || "_-.".contains($0) }) else { throw Problem("'\(user)' is not a user name") }
        rest = rest[rest.index(after: at)...]
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        var place = rest[..<slash]
        let database = slash == rest.endIndex ? "" : rest[rest.index(after: slash)...]
        var port = 5432
        if place.hasPrefix("["), let close = place.firstIndex(of: "]") {
            let after = place[place.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()), (1...65535).contains(p) else { throw Problem("'\(after.dropFirst())' is not a port") }
                port = p
            } else if !after.isEmpty {
                throw Problem("'\(place)' is not a host")
            }
            place = place[place.index(after: place.startIndex)..<close]
        } else if let colon = place.lastIndex(of: ":") {
            guard let p = Int(place[place.index(after: colon)...]), (1...65535).contains(p) else { throw Problem("'\(place[place.index(after: colon)...])' is not a port") }
            port = p
            place = place[..<colon]
        }
        let socketDirectory = query["host"]
        if let socketDirectory {
            guard socketDirectory.hasPrefix("/"), place.isEmpty else { throw Problem("host=DIR is a Unix socket directory (absolute), with no host before the /") }
        } else {
            guard !place.isEmpty, place.allSatisfy({ $0.isLetter || $0.isNumber || ".-:".contains($0) }) else { throw Problem("give the host: postgresql://USER@HOST/DATABASE") }
        }
        let name = database.isEmpty ? user : database
        guard name.allSatisfy({ $0.isLetter || $0.isNumber || "_-".contains($0) }) else { throw Problem("'\(name)' is not a database name") }
        let tls: TLS
        switch query["sslmode"] ?? "verify-full" {
        case "verify-full": tls = socketDirectory == nil ? .verifyFull : .disable
        case "disable": tls = .disable
        case let other: throw Problem("sslmode=\(other): verify-full (the default: the server's certificate and name are checked) or disable (loopback and Unix sockets only)")
        }
        let loopback = socketDirectory != nil || place == "localhost" || Self.isLoopbackAddress(String(place))
        if tls == .disable && !loopback { throw Problem("sslmode=disable only to loopback or a Unix socket: \(place) is reached over the network, so TLS is verified (sslmode=verify-full)") }
        self.user = String(user)
        self.host = socketDirectory == nil ? String(place) : nil
        self.port = port
        self.socketDirectory = socketDirectory
        self.database = String(name)
        self.tls = tls
    }

    /// Whether `host` is an IP address (v4 or v6), not a name.
    package static func isAddress(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    /// 127.0.0.0/8 or ::1, as addresses (a name such as 127.example.org is not one).
    static func isLoopbackAddress(_ host: String) -> Bool {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return UInt32(bigEndian: v4.s_addr) >> 24 == 127 }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, host, &v6) == 1 else { return false }
        return withUnsafeBytes(of: &v6) { Array($0) } == [UInt8](repeating: 0, count: 15) + [1]
    }

    package struct Problem: Error, Sendable, CustomStringConvertible {
        package var description: String
        init(_ description: String) { self.description = description }
    }
}
