// A node whose behaviour the daemon integration tests choose with arguments:
//   --send N          send N messages on `out` right after start (seq in metadata), then run on
//   --on-tick         send one message per input event instead, and finish after the Nth
//   --fail-after N    exit with --code (default 1) after N input events
//   --segv-after N    crash with SIGSEGV after N input events
//   --ignore-stop     keep running after STOP
//   --no-connect      never create the Node (sleep)
//   --print-inputs    print "got <input> <seq>" for each message
//   --flood N         print N log lines right after start
//   --then-exit       exit right after the initial sends
//   --exit-after-ms N exit N ms after start, reading no event (what the daemon sent stays unread)
//   --busy-ms N       sleep N ms after each event (work slower than a timer's period)
//   --spawn-sleeper   start `sleep 301` in the node's process group first, and leave it running
//   --send-from-thread  send on `out` from a second thread, without pause, until the event stream
//                     ends (while the main thread waits in `next()` with no timeout)
// It prints "events <n> inputs <n>" and each closed input, failed node and STOP it sees.
import ApusNode
import Dispatch
import Glibc
import Synchronization

let arguments = CommandLine.arguments
func value(_ name: String) -> Int? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return Int(arguments[index + 1])
}
func flag(_ name: String) -> Bool { arguments.contains(name) }
func complain(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

if flag("--no-connect") {
    while true { sleep(60) }
}

if flag("--spawn-sleeper") {
    var pid: pid_t = 0
    let argv: [UnsafeMutablePointer<CChar>?] = ["sleep", "301"].map { (text: String) in strdup(text) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    guard posix_spawnp(&pid, "sleep", nil, nil, argv, environ) == 0 else {
        complain("cannot start sleep")
        exit(3)
    }
    print("sleeper \(pid)")
    fflush(nil)
}

do {
    let node = try Node()
    for line in 0..<(value("--flood") ?? 0) { print("flood line \(line) with some padding to make it longer") }
    let toSend = value("--send") ?? 0
    var sent = 0
    func sendOne() throws {
        try node.send("out", [Int64(sent)], metadata: Metadata(["seq": .int(Int64(sent))]))
        sent += 1
    }
    if !flag("--on-tick") {
        while sent < toSend { try sendOne() }
    }
    if let milliseconds = value("--exit-after-ms") {
        usleep(UInt32(milliseconds) * 1000)
        print("exiting without reading")
        exit(0)
    }
    if flag("--then-exit") {
        print("sent \(sent), exiting")
        exit(0)
    }
    let ended = Atomic<Bool>(false)
    let senderDone = DispatchSemaphore(value: 0)
    if flag("--send-from-thread") {
        DispatchQueue.global().async {
            var count: Int64 = 0
            while !ended.load(ordering: .relaxed) {
                do {
                    try node.send("out", [count])
                } catch {
                    complain("sending thread: \(error)")
                    break
                }
                count += 1
            }
            print("sending thread sent \(count)")
            senderDone.signal()
        }
    }
    var inputs = 0
    defer {
        ended.store(true, ordering: .relaxed)
        if flag("--send-from-thread") { senderDone.wait() }
    }
    events: while true {
        guard let event = try node.next() else {
            if flag("--ignore-stop") {
                print("ignoring the end of the event stream")
                while true { sleep(60) }
            }
            break
        }
        if let busy = value("--busy-ms") { usleep(UInt32(busy) * 1000) }
        switch event {
        case .input(let input):
            inputs += 1
            if flag("--print-inputs"), case .int(let seq)? = input[parameter: "seq"] { print("got \(input.id) \(seq)") }
            if flag("--on-tick"), sent < toSend {
                try sendOne()
                if sent == toSend && value("--fail-after") == nil { break events }
            }
            if let limit = value("--fail-after"), inputs >= limit {
                complain("failing on purpose after \(inputs) inputs")
                exit(Int32(value("--code") ?? 1))
            }
            if let limit = value("--segv-after"), inputs >= limit {
                complain("crashing on purpose after \(inputs) inputs")
                raise(SIGSEGV)
            }
        case .inputClosed(let id):
            print("closed \(id)")
        case .nodeFailed(let failure):
            print("node-failed \(failure.node) [\(failure.inputs.joined(separator: ","))]: \(failure.message)")
        case .stop:
            print("stop")
        case .error(let message):
            print("error \(message)")
        }
    }
    print("events done inputs \(inputs) sent \(sent)")
} catch {
    print("test-node: \(error)")
    exit(2)
}
