package import BurrowAPI
import BurrowCrypto

#if canImport(Glibc)
    import Glibc
#endif

/// burrowd's API over the network, for the CLI (`--url https://HOST:PORT`):
/// each request on a new TLS 1.3 connection (`TLSConnection`). With an API
/// key, every request is signed as `[auth.signing]` describes
/// (docs/daemon-api.md): the key's secret never travels, and a listener
/// that requires signatures accepts it. Without one, a client certificate
/// authenticates it.
package struct RemoteClient: Sendable {
    package typealias Failure = UnixHTTPClient.Failure

    package let url: String
    let host: String
    let port: Int
    let tls: TLSConnection.Options
    let key: APIKeyToken?

    /// `url` is `https://HOST[:PORT]` (an IPv6 address in brackets), nothing after it.
    package init(url: String, caFile: String?, certificateFile: String?, keyFile: String?, apiKey: String?) throws(Failure) {
        var rest = Substring(url)
        guard rest.hasPrefix("https://") else { throw Failure(description: "--url \(url): burrowd is reached over HTTPS only: https://HOST:PORT") }
        rest = rest.dropFirst(8)
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.isEmpty, !rest.contains("/"), !rest.contains("@"), !rest.contains("?") else { throw Failure(description: "--url \(url): expected https://HOST:PORT, with no path") }
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            rest = rest[rest.index(after: close)...]
        } else {
            let colon = rest.firstIndex(of: ":") ?? rest.endIndex
            host = String(rest[..<colon])
            rest = rest[colon...]
        }
        if rest.isEmpty {
            port = 443
        } else {
            guard rest.hasPrefix(":"), let p = Int(rest.dropFirst()), (1...65535).contains(p) else { throw Failure(description: "--url \(url): the port is not one (1-65535)") }
            port = p
        }
        guard !host.isEmpty else { throw Failure(description: "--url \(url): no host") }
        self.url = url
        tls = TLSConnection.Options(caFile: caFile, certificateFile: certificateFile, keyFile: keyFile)
        if let apiKey {
            guard let token = APIKeyToken(apiKey) else { throw Failure(description: "the API key is not one burrowd made (bk_<16 hex>_<43 base64url>)") }
            key = token
        } else {
            key = nil
        }
    }

    /// Sends one request, signed when there is an API key.
    package func send(
        _ method: String, _ path: String, body: [UInt8]? = nil, headers: [(String, String)] = [], onBody: (([UInt8]) -> Void)? = nil
    ) throws(Failure) -> UnixHTTPClient.Response {
        var headers = headers
        if let key { headers += Self.signature(key, method: method, target: path, body: body ?? [], timestamp: Int64(time(nil))) }
        let connection: TLSConnection
        do {
            connection = try TLSConnection(host: host, port: port, options: tls)
        } catch {
            // Nothing of the request went out: it may be sent elsewhere.
            var failure = error
            failure.sent = false
            throw failure
        }
        let authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        return try UnixHTTPClient.exchange(
            method, path, host: authority, body: body, headers: headers, onBody: onBody, peer: url,
            write: { bytes throws(Failure) in try connection.write(bytes) },
            read: { buffer throws(Failure) in try connection.read(&buffer) })
    }

    /// The headers that sign a request (`RequestSigning` in burrowd): a
    /// fresh nonce, and HMAC-SHA256 with the key's signing key over the
    /// method, the target, the time, the nonce and the body's SHA-256.
    package static func signature(_ key: APIKeyToken, method: String, target: String, body: [UInt8], timestamp: Int64) -> [(String, String)] {
        var random = SystemRandomNumberGenerator()
        let nonce = Base64URL.encode((0..<24).map { _ in UInt8.random(in: 0...255, using: &random) })
        let signingKey = HMACSHA256.mac(key: key.secret, Array("burrow-request-signing-v1".utf8))
        let text = "\(method)\n\(target)\n\(timestamp)\n\(nonce)\n\(Hex.encode(SHA256.hash(body)))\n"
        return [
            ("Burrow-Key", key.id), ("Burrow-Timestamp", "\(timestamp)"), ("Burrow-Nonce", nonce),
            ("Burrow-Signature", Hex.encode(HMACSHA256.mac(key: signingKey, Array(text.utf8)))),
        ]
    }
}
