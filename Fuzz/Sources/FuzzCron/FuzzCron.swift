import BelfryTesting

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCron(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    if let failure = FuzzChecks.cron(Array(UnsafeBufferPointer(start: data, count: count))) { fatalError(failure) }
    return 0
}
