import BelfryTesting

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDefinitions(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    if let failure = FuzzChecks.definitions(Array(UnsafeBufferPointer(start: data, count: count))) { fatalError(failure) }
    return 0
}
