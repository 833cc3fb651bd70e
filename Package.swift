// swift-tools-version: 6.1
import PackageDescription

/// Every Swift target builds in Swift 6 mode with the same strictness;
/// Scripts/check.sh (CI) builds them with warnings as errors.
let strict: [SwiftSetting] =
    [
        .swiftLanguageMode(.v6),
        .enableUpcomingFeature("ExistentialAny"),
        .enableUpcomingFeature("InternalImportsByDefault"),
        .enableUpcomingFeature("MemberImportVisibility"),
    ] + (Context.environment["BURROW_WARNINGS_AS_ERRORS"] == "1" ? [.unsafeFlags(["-warnings-as-errors"])] : [])

let package = Package(
    name: "Burrow",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "burrow", targets: ["burrow"]),
        .executable(name: "burrowd", targets: ["burrowd"]),
        .executable(name: "burrow-spawner", targets: ["burrow-spawner"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        // No traits: the daemon needs no swift-configuration.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),  // NIOEmbedded, for in-process API tests
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),  // NIOHTTPTypes, already built for Hummingbird
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),  // TLS 1.3 for [transport.http] (BoringSSL, vendored)
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // JWT signatures for [auth.jwt] (HS256, ES256, EdDSA): swift-crypto's BoringSSL, X509, ASN1 (see docs/performance.md for its build cost)
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // The fleet's PostgreSQL (the central audit copy): its NIO, NIOSSL and swift-crypto are already built for Hummingbird and jwt-kit.
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    ],
    targets: [
        // C and system-library targets. Each has exactly one Swift importer.
        .target(name: "CBurrowSystem", path: "Sources/CBurrowSystem"),  // → BurrowSystem
        .target(name: "CBurrowChild", path: "Sources/CBurrowChild"),  // → BurrowRuntime
        .systemLibrary(
            name: "CSeccomp", path: "Sources/CSeccomp", pkgConfig: "libseccomp",
            providers: [.apt(["libseccomp-dev"])]),  // → BurrowPolicy
        .systemLibrary(
            name: "CCap", path: "Sources/CCap", pkgConfig: "libcap",
            providers: [.apt(["libcap-dev"])]),  // → BurrowPolicy
        .systemLibrary(
            name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]),  // → BurrowAudit
        .systemLibrary(
            name: "CCrypto", path: "Sources/CCrypto", pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]),  // → BurrowAudit
        .systemLibrary(
            name: "CSSL", path: "Sources/CSSL", pkgConfig: "libssl",
            providers: [.apt(["libssl-dev"])]),  // → BurrowRemote

        // Swift layers, imports pointing down only (see shared/STYLE.md §2).
        .target(
            name: "BurrowSystem",
            dependencies: ["CBurrowSystem", .product(name: "SystemPackage", package: "swift-system")],
            exclude: ["README.md"], swiftSettings: strict),
        .target(name: "BurrowJSON", exclude: ["README.md"], swiftSettings: strict),
        .target(
            name: "BurrowProfile",
            dependencies: ["BurrowJSON"],
            exclude: ["README.md"], swiftSettings: strict),
        .target(
            name: "BurrowPolicy",
            dependencies: ["BurrowProfile", "BurrowSystem", "CSeccomp", "CCap"],
            exclude: ["README.md"], swiftSettings: strict),
        // The only importers of libsqlite3 and libcrypto.
        .target(name: "BurrowSQLite", dependencies: ["CSQLite"], exclude: ["README.md"], swiftSettings: strict),
        .target(name: "BurrowCrypto", dependencies: ["CCrypto"], exclude: ["README.md"], swiftSettings: strict),
        // The CLI's TLS client (`burrow --url`), on the system's libssl.
        .target(name: "BurrowRemote", dependencies: ["BurrowAPI", "BurrowCrypto", "CSSL"], exclude: ["README.md"], swiftSettings: strict),
        .target(name: "BurrowAudit", dependencies: ["BurrowCrypto", "BurrowJSON", "BurrowSQLite", "BurrowSystem"], exclude: ["README.md"], swiftSettings: strict),
        .target(name: "BurrowHost", dependencies: ["BurrowAudit", "BurrowCrypto", "BurrowJSON", "BurrowProfile", "BurrowSystem"], exclude: ["README.md"], swiftSettings: strict),
        .target(
            name: "BurrowCgroup",
            dependencies: ["BurrowSystem", .product(name: "SystemPackage", package: "swift-system")],
            exclude: ["README.md"], swiftSettings: strict),
        .target(
            name: "BurrowEgress",
            dependencies: ["BurrowPolicy", "BurrowProfile", "BurrowSystem", .product(name: "SystemPackage", package: "swift-system")],
            exclude: ["README.md"], swiftSettings: strict),
        .target(
            name: "BurrowMCP", dependencies: ["BurrowAudit", "BurrowCrypto", "BurrowJSON", "BurrowPolicy", "BurrowProfile", "BurrowSystem"], exclude: ["README.md"],
            swiftSettings: strict),
        .target(
            name: "BurrowRuntime",
            dependencies: [
                "BurrowAudit", "BurrowCgroup", "BurrowEgress", "BurrowHost", "BurrowPolicy", "BurrowProfile", "BurrowSystem", "CBurrowChild",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            exclude: ["README.md"], swiftSettings: strict),
        .target(name: "BurrowAPI", dependencies: ["BurrowJSON", "BurrowProfile"], exclude: ["README.md"], swiftSettings: strict),
        // Signed tool manifests: what a tool is, its files by digest, and who vouches for it (libcrypto: Ed25519, X.509, CRLs).
        .target(
            name: "BurrowManifest", dependencies: ["BurrowAudit", "BurrowCrypto", "BurrowJSON", "BurrowSystem", .product(name: "SystemPackage", package: "swift-system")],
            exclude: ["README.md"], swiftSettings: strict),
        // The front door: every invocation, from the CLI or burrowd, is prepared and run here.
        .target(
            name: "BurrowInvocation",
            dependencies: [
                "BurrowAPI", "BurrowAudit", "BurrowHost", "BurrowManifest", "BurrowMCP", "BurrowPolicy", "BurrowProfile", "BurrowRuntime", "BurrowSystem",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            exclude: ["README.md"], swiftSettings: strict),
        // The session socket's protocol: unprivileged `burrow run|mcp|dry-run` as clients of burrowd.
        .target(
            name: "BurrowSession",
            dependencies: [
                "BurrowJSON", "BurrowPolicy", "BurrowProfile", "BurrowRuntime", "BurrowSystem", .product(name: "SystemPackage", package: "swift-system"),
            ],
            exclude: ["README.md"], swiftSettings: strict),
        .target(
            name: "BurrowDaemon",
            dependencies: [
                "BurrowAPI", "BurrowAudit", "BurrowCrypto", "BurrowFleet", "BurrowHost", "BurrowInvocation", "BurrowJSON", "BurrowManifest", "BurrowMCP", "BurrowPolicy",
                "BurrowProfile", "BurrowRuntime", "BurrowSQLite", "BurrowSession", "BurrowSystem", .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),  // the HTTPS listener ([transport.http])
                .product(name: "JWTKit", package: "jwt-kit"),  // [auth.jwt]
                .product(name: "NIOTLS", package: "swift-nio"),  // its handshake events
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            exclude: ["README.md"], swiftSettings: strict),
        .target(
            name: "BurrowCLI",
            dependencies: [
                "BurrowAPI", "BurrowAudit", "BurrowCrypto", "BurrowHost", "BurrowInvocation", "BurrowJSON", "BurrowManifest", "BurrowMCP", "BurrowPolicy", "BurrowProfile",
                "BurrowRemote", "BurrowRuntime", "BurrowSQLite", "BurrowSession", "BurrowSystem", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            exclude: ["README.md"], swiftSettings: strict),
        .target(
            name: "BurrowFleet",
            dependencies: [
                "BurrowAPI", "BurrowAudit", "BurrowProfile", "BurrowSystem", .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            exclude: ["README.md"], swiftSettings: strict),
        .executableTarget(name: "burrow", dependencies: ["BurrowCLI"], swiftSettings: strict),
        .executableTarget(name: "burrowd", dependencies: ["BurrowDaemon"], swiftSettings: strict),
        .executableTarget(name: "burrow-spawner", dependencies: ["CBurrowChild"], path: "Sources/burrow-spawner"),  // burrowd's clone helper

        // Tests.
        .executableTarget(name: "burrow-probe", path: "Tests/Probe"),
        .executableTarget(name: "burrow-hog", path: "Tests/Hog"),
        .executableTarget(
            name: "burrow-egress-bench", dependencies: ["BurrowEgress", "BurrowPolicy", "BurrowProfile", "BurrowSystem", .product(name: "SystemPackage", package: "swift-system")],
            path: "Tests/EgressBench", swiftSettings: strict),
        // Fuzz targets of every parser of hostile input (Scripts/fuzz.sh); built normally, it replays a corpus.
        .executableTarget(
            name: "burrow-fuzz", dependencies: ["BurrowAPI", "BurrowAudit", "BurrowEgress", "BurrowJSON", "BurrowManifest", "BurrowMCP", "BurrowProfile", "BurrowSession"],
            path: "Tests/Fuzz",
            exclude: ["Corpus"], swiftSettings: strict),
        .executableTarget(name: "burrow-audit-bench", dependencies: ["BurrowAudit", "BurrowSQLite"], path: "Tests/AuditBench", swiftSettings: strict),
        .executableTarget(
            name: "burrow-fleet-bench", dependencies: ["BurrowAudit", "BurrowFleet", "BurrowProfile", "BurrowSystem", .product(name: "Logging", package: "swift-log")],
            path: "Tests/FleetBench", swiftSettings: strict),
        .executableTarget(
            name: "burrow-trust-bench", dependencies: ["BurrowAudit", "BurrowHost", "BurrowInvocation", "BurrowPolicy", "BurrowProfile", "BurrowSystem"], path: "Tests/TrustBench",
            swiftSettings: strict),
        .target(
            name: "BurrowTestSupport", dependencies: ["BurrowManifest", "BurrowSystem", "BurrowProfile"], path: "Tests/BurrowTestSupport",
            swiftSettings: strict),
        .testTarget(name: "BurrowJSONTests", dependencies: ["BurrowJSON"], swiftSettings: strict),
        .testTarget(
            name: "BurrowProfileTests", dependencies: ["BurrowProfile", "BurrowTestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "BurrowPolicyTests",
            dependencies: ["BurrowPolicy", "BurrowProfile", "BurrowSystem", "BurrowTestSupport"],
            resources: [.copy("Golden")],
            swiftSettings: strict),
        .testTarget(
            name: "BurrowRuntimeTests",
            dependencies: [
                "BurrowAudit", "BurrowCrypto", "BurrowJSON", "BurrowRuntime", "BurrowSQLite", "BurrowSystem", "BurrowTestSupport", .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "BurrowEgressTests",
            dependencies: ["BurrowEgress", "BurrowPolicy", "BurrowProfile", "BurrowSystem", "BurrowTestSupport"],
            swiftSettings: strict),
        .testTarget(name: "BurrowCgroupTests", dependencies: ["BurrowCgroup", "BurrowTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "BurrowMCPTests",
            dependencies: [
                "BurrowJSON", "BurrowMCP", "BurrowPolicy", "BurrowProfile", "BurrowSystem", "BurrowTestSupport", .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "BurrowAuditTests", dependencies: ["BurrowAudit", "BurrowJSON", "BurrowSQLite", "BurrowTestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "BurrowDaemonTests",
            dependencies: [
                "BurrowAPI", "BurrowAudit", "BurrowDaemon", "BurrowInvocation", "BurrowJSON", "BurrowProfile", "BurrowRuntime", "BurrowSession", "BurrowSystem",
                "BurrowTestSupport",
                .product(name: "SystemPackage", package: "swift-system"), .product(name: "Hummingbird", package: "hummingbird"), .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"), .product(name: "JWTKit", package: "jwt-kit"),  // JWTs the tests sign
            ],
            swiftSettings: strict),
        .testTarget(
            name: "BurrowInvocationTests",
            dependencies: [
                "BurrowAPI", "BurrowAudit", "BurrowHost", "BurrowInvocation", "BurrowJSON", "BurrowPolicy", "BurrowProfile", "BurrowRuntime", "BurrowSystem",
                "BurrowTestSupport",
            ],
            swiftSettings: strict),
        .testTarget(
            name: "BurrowManifestTests", dependencies: ["BurrowAudit", "BurrowCrypto", "BurrowJSON", "BurrowManifest", "BurrowTestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "BurrowSystemTests", dependencies: ["BurrowSystem", "BurrowTestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "BurrowCLITests",
            dependencies: [
                "BurrowCLI", "BurrowSystem", "BurrowTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict),
    ]
)
