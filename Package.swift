// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "belfry",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "BelfrySchedule", targets: ["BelfrySchedule"]),
        .library(name: "BelfryConfig", targets: ["BelfryConfig"]),
        .library(name: "BelfryStore", targets: ["BelfryStore"]),
        .library(name: "BelfryPostgres", targets: ["BelfryPostgres"]),
        .library(name: "BelfryExecutor", targets: ["BelfryExecutor"]),
        .library(name: "BelfryDaemon", targets: ["BelfryDaemon"]),
        .library(name: "BelfryTesting", targets: ["BelfryTesting"]),
        .library(name: "BelfryHTTP", targets: ["BelfryHTTP"]),
        .executable(name: "belfry", targets: ["belfry"]),
        .executable(name: "belfry-daemon", targets: ["belfry-daemon"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .target(name: "BelfrySchedule"),
        .target(name: "BelfryConfig", dependencies: ["BelfrySchedule", "Yams"]),
        .target(
            name: "BelfryStore",
            dependencies: [
                "BelfryConfig", "BelfrySchedule", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ]
        ),
        .target(
            name: "BelfryPostgres",
            dependencies: [
                "BelfryConfig", "BelfrySchedule", "BelfryStore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "BelfryListings", dependencies: ["BelfrySchedule", "BelfryStore"]),
        .target(
            name: "BelfryHTTP",
            dependencies: [
                "BelfrySchedule", "BelfryConfig", "BelfryStore", "BelfryListings",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .target(
            name: "BelfryCommandLine",
            dependencies: [
                "BelfrySchedule", "BelfryConfig", "BelfryStore", "BelfryListings",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            plugins: ["BuildInfo"]
        ),
        // `belfry`: next, validate, deploy and the listings on SQLite, in a program without the
        // executor, the HTTP server or the PostgreSQL client; everything else is handed to
        // `belfry-daemon`. Release builds link it fully statically (no dynamic loader, no
        // relocations at start): `belfry next` starts in 4 ms instead of 10 (docs/performance.md).
        // Foundation's static archives need their C parts named in one group; lld, unlike gold,
        // does not print glibc's link-time warnings (mktemp, getpwuid in a static program).
        .executableTarget(
            name: "belfry",
            dependencies: ["BelfryCommandLine", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            linkerSettings: [
                .unsafeFlags(
                    ["-static-executable", "-use-ld=lld", "-Xlinker", "--start-group", "-lCoreFoundation", "-l_FoundationCShims",
                     "-l_FoundationCollections", "-l_FoundationICU", "-Xlinker", "--end-group"],
                    .when(platforms: [.linux], configuration: .release))
            ]
        ),
        // `belfry-daemon`: every command. It stays linked to the system's C library: user and
        // group look-ups (a job's `user:`) go through NSS modules that a static program could only
        // load from the very glibc it was built with. The Swift runtime and Foundation are static.
        .executableTarget(
            name: "belfry-daemon",
            dependencies: [
                "BelfryCommandLine", "BelfrySchedule", "BelfryConfig", "BelfryStore", "BelfryPostgres", "BelfryExecutor", "BelfryDaemon",
                "BelfryListings", "BelfryHTTP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            linkerSettings: [
                .unsafeFlags(
                    ["-static-stdlib", "-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs", "-Xlinker", "--start-group",
                     "-lCoreFoundation", "-l_FoundationCShims", "-l_FoundationCollections", "-l_FoundationICU", "-Xlinker", "--end-group"],
                    .when(platforms: [.linux], configuration: .release))
            ]
        ),
        .plugin(name: "BuildInfo", capability: .buildTool()),
        .target(name: "CBelfrySpawn"),
        .target(
            name: "BelfryExecutor",
            dependencies: [
                "BelfryConfig", "BelfryStore", "CBelfrySpawn",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .target(
            name: "BelfryDaemon",
            dependencies: [
                "BelfrySchedule", "BelfryConfig", "BelfryStore", "BelfryExecutor",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .target(name: "BelfryTesting", dependencies: ["BelfrySchedule", "BelfryConfig"]),
        .testTarget(name: "BelfryScheduleTests", dependencies: ["BelfrySchedule", "BelfryTesting", "belfry", "belfry-daemon"]),
        .testTarget(name: "BelfryConfigTests", dependencies: ["BelfryConfig", "BelfryTesting"]),
        .testTarget(name: "DocsTests", dependencies: ["BelfryConfig", "BelfryTesting", "belfry", "belfry-daemon"]),
        .testTarget(
            name: "BelfryHTTPTests",
            dependencies: ["BelfryHTTP", "BelfryStore", "BelfryConfig", "BelfrySchedule", "BelfryTesting", .product(name: "HummingbirdTesting", package: "hummingbird")]
        ),
        .testTarget(
            name: "BelfryDaemonTests",
            dependencies: ["BelfryDaemon", "BelfryExecutor", "BelfryStore", "BelfryConfig", "BelfrySchedule", "BelfryTesting", "belfry", "belfry-daemon"]
        ),
        .testTarget(name: "BelfryExecutorTests", dependencies: ["BelfryExecutor", "BelfryStore", "BelfryConfig", "BelfryTesting", "belfry", "belfry-daemon"]),
        .testTarget(name: "BelfryStoreTests", dependencies: ["BelfryStore", "BelfryPostgres", "BelfryConfig", "BelfryTesting", "belfry", "belfry-daemon"]),
    ]
)
