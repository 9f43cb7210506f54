// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "belfry",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "BelfrySchedule", targets: ["BelfrySchedule"]),
        .executable(name: "belfry", targets: ["belfry"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .target(name: "BelfrySchedule"),
        .executableTarget(
            name: "belfry",
            dependencies: [
                "BelfrySchedule",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "BelfryScheduleTests", dependencies: ["BelfrySchedule", "belfry"]),
    ]
)
