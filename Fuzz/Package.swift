// swift-tools-version:6.2
import PackageDescription

// libFuzzer targets over the checks in BelfryTesting/Fuzzing.swift. In their own package so
// that `swift test` of Belfry does not build them. How to run them: README, "Proof at scale".
let package = Package(
    name: "BelfryFuzz",
    dependencies: [.package(name: "belfry", path: "..")],
    targets: [
        .executableTarget(name: "FuzzCron", dependencies: [.product(name: "BelfryTesting", package: "belfry")]),
        .executableTarget(name: "FuzzDefinitions", dependencies: [.product(name: "BelfryTesting", package: "belfry")]),
    ]
)
