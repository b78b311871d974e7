import ApusTransport
import Dispatch
import Foundation
import Glibc
import Synchronization
import Testing

@testable import ApusTransport

@Suite struct DoorbellTests {
    @Test func waitWithoutRingTimesOut() throws {
        let inbox = try Inbox(layout: InboxLayout(rings: [InputRingLayout(capacity: 1, policy: .dropOldest)]), name: "unit")
        let subscriber = try Subscriber(inbox: inbox, inputs: [InputBinding(producer: 0, bit: 1)]) { _, _ throws(TransportError) in
            throw .corrupted("no pools in this test")
        }
        let start = monotonicNanoseconds()
        #expect(try subscriber.receive(timeoutNanoseconds: 30_000_000) == nil)
        #expect(monotonicNanoseconds() - start >= 30_000_000)
    }

    @Test func closedInputIsReportedOnce() throws {
        let inbox = try Inbox(layout: InboxLayout(rings: [InputRingLayout(capacity: 1, policy: .dropOldest)]), name: "unit")
        let subscriber = try Subscriber(inbox: inbox, inputs: [InputBinding(producer: 0, bit: 1)]) { _, _ throws(TransportError) in
            throw .corrupted("no pools in this test")
        }
        Reclamation.closeEdge(inbox, ring: 0)
        guard case .inputClosed(let input) = try subscriber.receive(timeoutNanoseconds: 0) else {
            Issue.record("expected inputClosed")
            return
        }
        #expect(input == 0)
        #expect(try subscriber.receive(timeoutNanoseconds: 1_000_000) == nil)
    }
}

@Suite struct AdaptiveSpinTests {
    @Test func idleTimeoutsDecayTheSpinToNothing() throws {
        let inbox = try Inbox(layout: InboxLayout(rings: [InputRingLayout(capacity: 1, policy: .dropOldest)]), name: "unit")
        var spin = AdaptiveSpin(budgetNanoseconds: AdaptiveSpin.maximumNanoseconds)
        // Each timeout is longer than any wait worth spinning for, so each halves the budget.
        for _ in 0..<10 {
            #expect(
                !inbox.doorbell.wait(
                    until: monotonicNanoseconds() + 2 * AdaptiveSpin.maximumNanoseconds, spin: &spin, spinningOn: { false }
                ) { false })
        }
        #expect(spin.budgetNanoseconds == 0)
    }

    @Test func shortWaitsGrowTheSpinToCoverThem() {
        var spin = AdaptiveSpin(budgetNanoseconds: 0)
        spin.record(waitNanoseconds: 20_000)
        #expect(spin.budgetNanoseconds == 40_000)
        spin.record(waitNanoseconds: 1_000)
        #expect(spin.budgetNanoseconds == 40_000)
        spin.record(waitNanoseconds: 1_000_000)
        #expect(spin.budgetNanoseconds == 20_000)
    }
}

@Suite struct StampClockTests {
    /// Takes stamps between two CLOCK_MONOTONIC readings for `seconds`, with idle spells of up to
    /// a few milliseconds in between; returns the furthest a stamp fell outside its two readings.
    func furthestOutside(_ clock: inout StampClock, seconds: Double) -> (nanoseconds: UInt64, backwards: Int) {
        var furthest: UInt64 = 0
        var backwards = 0
        var last: UInt64 = 0
        let end = monotonicNanoseconds() + UInt64(seconds * 1e9)
        var round = 0
        while monotonicNanoseconds() < end {
            round += 1
            for _ in 0..<(round % 7 == 0 ? 50_000 : 1_000) {
                let before = monotonicNanoseconds()
                let stamp = clock.now()
                let after = monotonicNanoseconds()
                furthest = max(furthest, before > stamp ? before - stamp : stamp > after ? stamp - after : 0)
                if stamp < last { backwards += 1 }
                last = stamp
            }
            if round % 3 == 0 { usleep(UInt32(round % 5) * 1_000) }
        }
        return (furthest, backwards)
    }

    @Test func stampsKeepToClockMonotonicAndNeverGoBack() throws {
        // A small rate baseline, so that the rate is measured afresh several times in the run.
        var clock = StampClock(maximumBaseline: 1 << 24)
        let (furthest, backwards) = furthestOutside(&clock, seconds: 0.5)
        #expect(backwards == 0)
        // A few nanoseconds here. Preemption cannot push a stamp outside its two readings (it only
        // widens them), so the bound only has to allow for the anchor's reading; a rate off by
        // 0.1% misses it (800 ns).
        #expect(furthest < 500, "a stamp fell \(furthest) ns outside CLOCK_MONOTONIC")
        #expect(clock.readsCounter == StampClock.counterIsClock)
    }

    @Test func withoutTheCounterStampsAreClockReadings() {
        var clock = StampClock(usesCounter: false)
        let (furthest, backwards) = furthestOutside(&clock, seconds: 0.05)
        #expect(furthest == 0 && backwards == 0)
        #expect(!clock.readsCounter)
    }
}
