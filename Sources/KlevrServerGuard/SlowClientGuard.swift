import HummingbirdCore
import NIOCore
import NIOHTTPTypes
import Synchronization

/// Closes connections whose clients are too slow to be worth a file descriptor: a request head not
/// complete within ``Limits/head`` of the connection opening, a request body not complete within
/// ``Limits/body`` of its head, and a kept-alive connection that starts no new request within
/// ``Limits/idle`` of its last response. A request being answered (a long-poll held open by the
/// manager, or a member's poll held by its primary) is not the client's delay and has no limit here.
///
/// Used by the manager's server and by every agent's peer server (zone members' polls, relays, whois).
///
/// It sits in each connection's pipeline after the HTTP decoder, so a head that arrives one byte at a
/// time is simply a head that has not arrived yet.
public final class SlowClientGuard: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart
    public typealias OutboundIn = HTTPResponsePart
    public typealias OutboundOut = HTTPResponsePart

    /// How long a client may take for each part of its request.
    public struct Limits: Sendable {
        public var head: TimeAmount
        public var body: TimeAmount
        public var idle: TimeAmount

        public init(head: TimeAmount = .seconds(10), body: TimeAmount = .seconds(60), idle: TimeAmount = .seconds(30)) {
            self.head = head
            self.body = body
            self.idle = idle
        }
    }

    private let limits: Limits
    private let closed: ConnectionCounter?
    private var timer: Scheduled<Void>?
    /// Requests whose head arrived and whose response has not ended yet.
    private var awaitingResponse = 0
    /// Whether a request's body is still arriving (its head came, its end did not).
    private var readingBody = false

    public init(limits: Limits, closed: ConnectionCounter? = nil) {
        self.limits = limits
        self.closed = closed
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        arm(limits.head, context: context)
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        disarm()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        disarm()
        context.fireChannelInactive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            awaitingResponse += 1
            readingBody = true
            arm(limits.body, context: context)
        case .body:
            break
        case .end:
            readingBody = false
            // Answering is the server's time: no limit until the response has been written. A response
            // written before the body ended (an early 413) leaves the connection idle from now.
            if awaitingResponse > 0 { disarm() } else { arm(limits.idle, context: context) }
        }
        context.fireChannelRead(data)
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            awaitingResponse = max(0, awaitingResponse - 1)
            // While a body is still arriving its own limit keeps running.
            if awaitingResponse == 0 && !readingBody { arm(limits.idle, context: context) }
        }
        context.write(data, promise: promise)
    }

    private func arm(_ limit: TimeAmount, context: ChannelHandlerContext) {
        disarm()
        let channel = context.channel
        let closed = self.closed
        timer = context.eventLoop.scheduleTask(in: limit) {
            closed?.countTimeout()
            channel.close(promise: nil)
        }
    }

    private func disarm() {
        timer?.cancel()
        timer = nil
    }
}

/// Counts connections for the cap (Hummingbird's `AvailableConnectionsDelegate`: past the cap the server
/// stops accepting, so new clients wait in the listen backlog), and the connections closed for slowness.
/// The counters are shared by copies, so tests and logs can read them.
public struct ConnectionCap: AvailableConnectionsDelegate {
    public let limit: Int
    public let counter: ConnectionCounter

    public init(limit: Int, counter: ConnectionCounter = ConnectionCounter()) {
        self.limit = max(1, limit)
        self.counter = counter
    }

    public mutating func connectionOpened() { counter.opened() }
    public mutating func connectionClosed() { counter.closed() }
    public func isAcceptingNewConnections() -> Bool { counter.open < limit }
}

/// Open connections, their peak, and connections closed by ``SlowClientGuard``.
public final class ConnectionCounter: Sendable {
    private let state = Mutex<(open: Int, peak: Int, timedOut: Int)>((0, 0, 0))

    public var open: Int { state.withLock { $0.open } }
    public var peak: Int { state.withLock { $0.peak } }
    public var timedOut: Int { state.withLock { $0.timedOut } }

    public init() {}

    public func opened() {
        state.withLock {
            $0.open += 1
            $0.peak = max($0.peak, $0.open)
        }
    }

    public func closed() { state.withLock { $0.open = max(0, $0.open - 1) } }
    public func countTimeout() { state.withLock { $0.timedOut += 1 } }
}
