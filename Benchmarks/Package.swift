// swift-tools-version:6.3
import PackageDescription

// Benchmarks live in their own package so that `swift test` of Belfry does not build
// ordo-one/benchmark. Run from this directory: `swift package --disable-sandbox benchmark`.
let package = Package(
    name: "BelfryBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "belfry", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
    ],
    targets: [
        .executableTarget(
            name: "NextSlot",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "BelfrySchedule", package: "belfry"),
            ],
            path: "Benchmarks/NextSlot",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "History",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "BelfryStore", package: "belfry"),
            ],
            path: "Benchmarks/History",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "Executor",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "BelfryExecutor", package: "belfry"),
                .product(name: "BelfryConfig", package: "belfry"),
                .product(name: "BelfryStore", package: "belfry"),
            ],
            path: "Benchmarks/Executor",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "NextSlotTimer",
            dependencies: [.product(name: "BelfrySchedule", package: "belfry")]
        ),
        .executableTarget(
            name: "SpawnFloor",
            dependencies: [.product(name: "Subprocess", package: "swift-subprocess")]
        ),
    ]
)
