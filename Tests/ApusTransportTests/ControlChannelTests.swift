import ApusTransport
import Dispatch
import Foundation
import Glibc
import Synchronization
import Testing

@testable import ApusTransport

@Suite struct ControlChannelTests {
    @Test func messagesCarryDescriptors() throws {
        let (left, right) = try ControlChannel.pair()
        let segment = try SharedSegment(name: "unit", size: 4096)
        segment.base.storeBytes(of: 0xABCD, as: UInt32.self)
        try left.send([1, 2, 3], fds: [segment.fd])
        let (bytes, fds) = try right.receive()
        #expect(bytes == [1, 2, 3])
        #expect(fds.count == 1)
        let mapped = try SharedSegment(adopting: fds[0], size: 4096, writable: false)
        #expect(mapped.base.load(as: UInt32.self) == 0xABCD)
    }

    @Test func oversizedAnnouncedLengthIsRefused() throws {
        let (left, right) = try ControlChannel.pair()
        let header: [UInt8] = [0xFF, 0xFF, 0xFF, 0x7F]
        _ = header.withUnsafeBytes { write(left.fd, $0.baseAddress, 4) }
        #expect(throws: TransportError.malformedMessage("announced length 2147483647 exceeds 1048576")) { try right.receive() }
    }

    @Test func truncatedFrameReportsDisconnection() throws {
        let (left, right) = try ControlChannel.pair()
        let partial: [UInt8] = [10, 0, 0, 0, 1, 2]
        _ = partial.withUnsafeBytes { write(left.fd, $0.baseAddress, 6) }
        shutdown(left.fd, Int32(SHUT_WR))
        #expect(throws: TransportError.disconnected) { try right.receive() }
    }

    /// A node sends on its channel from a sending thread (pool announcements) and from any other
    /// (closing an output) at once: frames must arrive whole, never interleaved.
    @Test func framesSentFromSeveralThreadsAtOnceArriveWhole() throws {
        let (left, right) = try ControlChannel.pair()
        let writers = 4
        let perWriter = 5000
        let received = Mutex<[[UInt8]]>([])
        let readerDone = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            defer {
                // A reader that lost the framing stops early: unblock the writers.
                shutdown(right.fd, Int32(SHUT_RDWR))
                readerDone.signal()
            }
            for _ in 0..<(writers * perWriter) {
                guard let (bytes, _) = try? right.receive() else { return }
                received.withLock { $0.append(bytes) }
            }
        }
        let writersDone = DispatchGroup()
        for writer in 0..<writers {
            writersDone.enter()
            Thread.detachNewThread {
                // Lengths differ per writer, so a frame that took another's bytes shows.
                let frame = [UInt8](repeating: UInt8(writer + 1), count: 100 + writer * 37)
                for _ in 0..<perWriter { try? left.send(frame) }
                writersDone.leave()
            }
        }
        writersDone.wait()
        // A reader that lost the framing may wait for bytes that never come: end its wait.
        if readerDone.wait(timeout: .now() + 10) == .timedOut {
            shutdown(left.fd, Int32(SHUT_RDWR))
            readerDone.wait()
        }
        let frames = received.withLock { $0 }
        #expect(frames.count == writers * perWriter)
        let mixed = frames.filter { frame in Set(frame).count != 1 || frame.count != 100 + (Int(frame[0]) - 1) * 37 }.count
        #expect(mixed == 0, "frames that mix the bytes of several senders")
    }

    @Test func randomBytesNeverCrashTheReceiver() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let (left, right) = try ControlChannel.pair()
            let garbage = (0..<Int.random(in: 1...64, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = garbage.withUnsafeBytes { write(left.fd, $0.baseAddress, $0.count) }
            shutdown(left.fd, Int32(SHUT_WR))
            do {
                _ = try right.receive()
            } catch {
                #expect(error == .disconnected || error.description.hasPrefix("malformed"))
            }
        }
    }
}
