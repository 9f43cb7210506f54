// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "belfry",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "BelfrySchedule", targets: ["BelfrySchedule"]),
        .library(name: "BelfryConfig", targets: ["BelfryConfig"]),
        .library(name: "BelfryStore", targets: ["BelfryStore"]),
        .executable(name: "belfry", targets: ["belfry"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    ],
    targets: [
        .target(name: "BelfrySchedule"),
        .target(name: "BelfryConfig", dependencies: ["BelfrySchedule", "Yams"]),
        .target(
            name: "BelfryStore",
            dependencies: ["BelfryConfig", "BelfrySchedule", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .executableTarget(
            name: "belfry",
            dependencies: [
                "BelfrySchedule", "BelfryConfig", "BelfryStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(name: "BelfryTesting"),
        .testTarget(name: "BelfryScheduleTests", dependencies: ["BelfrySchedule", "BelfryTesting", "belfry"]),
        .testTarget(name: "BelfryConfigTests", dependencies: ["BelfryConfig"]),
        .testTarget(name: "BelfryStoreTests", dependencies: ["BelfryStore", "BelfryConfig", "BelfryTesting", "belfry"]),
    ]
)
