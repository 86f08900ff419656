using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace BindProxy.Capture;

/// <summary>
/// Builds the IPv4 or IPv6 and TCP headers of one leg's packets, so that a byte stream the proxy
/// read or wrote opens in Wireshark as a real TCP connection: a made-up three-way handshake, then
/// sequence numbers counted from stream offsets (so bytes the capture dropped show as a gap, not as
/// a shifted stream), acknowledgements of exactly what was written the other way, segments of at
/// most <see cref="MaxSegment"/> bytes, FIN and RST.
/// </summary>
/// <remarks>
/// A is the side that opened the connection (the client on the client leg, the proxy's source on
/// the upstream leg), B the other.
/// <code>
///  IPv4: 45 00 len(2) id(2) 40 00 ttl=40 proto=06 csum(2) src(4) dst(4)
///  IPv6: 60 00 00 00 payloadlen(2) next=06 hop=40 src(16) dst(16)
///  TCP:  sport(2) dport(2) seq(4) ack(4) off|flags(2) window(2) csum(2) urg(2) [SYN: MSS, NOP, WS]
/// </code>
/// </remarks>
internal sealed class TcpFramer
{
    /// <summary>Payload bytes per segment: loopback's MSS, so a packet fits IPv4's 64 KiB total length.</summary>
    public const int MaxSegment = 65483;

    /// <summary>Window scale announced in the handshake: the 16-bit window then means up to 8 MiB.</summary>
    private const int WindowShift = 7;

    private const byte Fin = 0x01;
    private const byte Syn = 0x02;
    private const byte Rst = 0x04;
    private const byte Psh = 0x08;
    private const byte Ack = 0x10;

    private readonly byte[] _packet = new byte[40 + 28];
    private readonly Side _a;
    private readonly Side _b;
    private readonly bool _v6;
    private ushort _ipId;

    public TcpFramer(IPEndPoint a, IPEndPoint b, uint isnA, uint isnB, long? baseA, long? baseB)
    {
        var addressA = Unmap(a.Address);
        var addressB = Unmap(b.Address);
        _v6 = addressA.AddressFamily == AddressFamily.InterNetworkV6 || addressB.AddressFamily == AddressFamily.InterNetworkV6;
        if (_v6)
        {
            addressA = addressA.MapToIPv6();
            addressB = addressB.MapToIPv6();
        }

        _a = new Side(addressA.GetAddressBytes(), (ushort)a.Port, isnA, baseA);
        _b = new Side(addressB.GetAddressBytes(), (ushort)b.Port, isnB, baseB);
    }

    /// <summary>
    /// The same leg in a new section (the next capture file): sequence numbers go on from where
    /// they are, behind a new made-up handshake that <see cref="NeedsHandshake"/> asks for, so the
    /// file opens on its own; null when the leg has ended.
    /// </summary>
    public TcpFramer? Continue() => Ended ? null : new TcpFramer(this);

    private TcpFramer(TcpFramer from)
    {
        _v6 = from._v6;
        _a = from._a.Continue();
        _b = from._b.Continue();
        NeedsHandshake = true;
    }

    /// <summary>Continued into a new section and not yet introduced there by <see cref="Handshake"/>.</summary>
    public bool NeedsHandshake { get; private set; }

    /// <summary>Both ends have closed (FIN both ways) or one has reset: nothing more belongs on this leg.</summary>
    public bool Ended => (_a.Fin && _b.Fin) || _reset;

    private bool _reset;

    /// <summary>Writes SYN, SYN-ACK and ACK (and, on a continued leg, the FIN a side had sent before).</summary>
    public void Handshake(PcapngWriter writer, int interfaceId, long micros, string? comment)
    {
        NeedsHandshake = false;
        Emit(writer, interfaceId, micros, _a, _b, _a.Isn, 0, Syn, [], comment);
        Emit(writer, interfaceId, micros, _b, _a, _b.Isn, _a.Isn + 1, Syn | Ack, [], null);
        Emit(writer, interfaceId, micros, _a, _b, _a.Isn + 1, _b.Isn + 1, Ack, [], null);
        foreach (var (side, fromA) in new[] { (_a, true), (_b, false) })
        {
            if (side.FinBefore)
            {
                side.FinBefore = false;
                Finish(writer, interfaceId, micros, fromA, (side.Base ?? 0) + side.End, null);
            }
        }
    }

    /// <summary>
    /// Bytes at stream <paramref name="offset"/> from A (or B), cut into segments, then the other
    /// side's acknowledgement of them. Bytes before what was already written are not written again.
    /// </summary>
    /// <param name="sums">
    /// Where the payload checksums of <paramref name="data"/>'s segments are kept for another leg's
    /// packets of the same bytes (cut at the same places), so each is summed once; null: summed here.
    /// </param>
    public void Data(PcapngWriter writer, int interfaceId, long micros, bool fromA, long offset, ReadOnlySpan<byte> data, string? comment, PayloadSums? sums = null)
    {
        var whole = data;
        var (from, to) = fromA ? (_a, _b) : (_b, _a);
        if (Ended || from.Fin)
        {
            return;
        }

        from.Base ??= offset;
        long start = offset - from.Base.Value;
        if (start < from.End)
        {
            // Already written (a send the capture saw twice): only what is new goes on.
            int skip = (int)Math.Min(data.Length, from.End - start);
            data = data[skip..];
            start += skip;
        }

        if (data.IsEmpty)
        {
            return;
        }

        while (!data.IsEmpty)
        {
            int length = Math.Min(data.Length, MaxSegment);
            byte flags = length == data.Length ? (byte)(Ack | Psh) : Ack;
            uint? payloadSum = sums?.Get(whole, whole.Length - data.Length, length);
            Emit(writer, interfaceId, micros, from, to, Seq(from, start), Next(to), flags, data[..length], comment, payloadSum);
            comment = null;
            data = data[length..];
            start += length;
        }

        from.End = Math.Max(from.End, start);
        Emit(writer, interfaceId, micros, to, from, Next(to), Next(from), Ack, [], null);
    }

    /// <summary>A FIN from A (or B) once its bytes up to <paramref name="offset"/> are sent, then the other side's ACK of it.</summary>
    public void Finish(PcapngWriter writer, int interfaceId, long micros, bool fromA, long offset, string? comment)
    {
        var (from, to) = fromA ? (_a, _b) : (_b, _a);
        if (Ended || from.Fin)
        {
            return;
        }

        from.Base ??= offset;
        from.End = Math.Max(from.End, offset - from.Base.Value);
        Emit(writer, interfaceId, micros, from, to, Seq(from, from.End), Next(to), Fin | Ack, [], comment);
        from.Fin = true;
        Emit(writer, interfaceId, micros, to, from, Next(to), Next(from), Ack, [], null);
    }

    /// <summary>A reset from A (or B); the leg ends.</summary>
    public void Reset(PcapngWriter writer, int interfaceId, long micros, bool fromA, string? comment)
    {
        if (Ended)
        {
            return;
        }

        var (from, to) = fromA ? (_a, _b) : (_b, _a);
        Emit(writer, interfaceId, micros, from, to, Next(from), Next(to), Rst | Ack, [], comment);
        _reset = true;
    }

    /// <summary>The sequence number of the next byte (or FIN) of <paramref name="side"/>.</summary>
    private static uint Next(Side side) => Seq(side, side.End) + (side.Fin ? 1u : 0u);

    private static uint Seq(Side side, long relative) => unchecked(side.Isn + 1 + (uint)relative);

    private void Emit(PcapngWriter writer, int interfaceId, long micros, Side from, Side to, uint seq, uint ack, byte flags, ReadOnlySpan<byte> payload, string? comment,
        uint? payloadSum = null)
    {
        var packet = _packet.AsSpan();
        int ipLength = _v6 ? 40 : 20;
        int tcpLength = (flags & Syn) != 0 ? 28 : 20;
        int total = ipLength + tcpLength + payload.Length;
        if (_v6)
        {
            BinaryPrimitives.WriteUInt32BigEndian(packet, 0x60000000);
            BinaryPrimitives.WriteUInt16BigEndian(packet[4..], (ushort)(tcpLength + payload.Length));
            packet[6] = 6;
            packet[7] = 64;
            from.Address.CopyTo(packet[8..]);
            to.Address.CopyTo(packet[24..]);
        }
        else
        {
            packet[0] = 0x45;
            packet[1] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(packet[2..], (ushort)total);
            BinaryPrimitives.WriteUInt16BigEndian(packet[4..], _ipId++);
            BinaryPrimitives.WriteUInt16BigEndian(packet[6..], 0x4000);
            packet[8] = 64;
            packet[9] = 6;
            packet[10] = packet[11] = 0;
            from.Address.CopyTo(packet[12..]);
            to.Address.CopyTo(packet[16..]);
            BinaryPrimitives.WriteUInt16BigEndian(packet[10..], Checksum.Finish(Checksum.Add(0, packet[..20])));
        }

        var tcp = packet.Slice(ipLength, tcpLength);
        BinaryPrimitives.WriteUInt16BigEndian(tcp, from.Port);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], to.Port);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], seq);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[8..], (flags & Ack) != 0 ? ack : 0);
        tcp[12] = (byte)((tcpLength / 4) << 4);
        tcp[13] = flags;
        BinaryPrimitives.WriteUInt16BigEndian(tcp[14..], ushort.MaxValue);
        tcp[16] = tcp[17] = tcp[18] = tcp[19] = 0;
        if (tcpLength == 28)
        {
            // MSS, NOP, window scale
            tcp[20] = 2;
            tcp[21] = 4;
            BinaryPrimitives.WriteUInt16BigEndian(tcp[22..], MaxSegment);
            tcp[24] = 1;
            tcp[25] = 3;
            tcp[26] = 3;
            tcp[27] = WindowShift;
        }

        // TCP checksum over the pseudo-header, the header and the payload (the header's length is
        // even, so the payload's words line up), then the headers and the payload go into the
        // block as they are: the payload is not copied here first.
        uint sum = Checksum.Add(0, from.Address);
        sum = Checksum.Add(sum, to.Address);
        sum += 6u + (uint)(tcpLength + payload.Length);
        sum = Checksum.Add(sum, tcp);
        sum = payloadSum is { } known ? sum + known : Checksum.Add(sum, payload);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[16..], Checksum.Finish(sum));

        writer.WritePacket(interfaceId, micros, packet[..(ipLength + tcpLength)], payload, comment);
    }

    private static IPAddress Unmap(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    private sealed class Side(byte[] address, ushort port, uint isn, long? @base)
    {
        public byte[] Address { get; } = address;

        public ushort Port { get; } = port;

        public uint Isn { get; } = isn;

        /// <summary>The stream offset written as the first byte after the SYN; known at the first byte seen when the capture began mid-stream.</summary>
        public long? Base { get; set; } = @base;

        /// <summary>Bytes written so far, relative to <see cref="Base"/>.</summary>
        public long End { get; set; }

        public bool Fin { get; set; }

        /// <summary>A continued side whose FIN was written in the section before: the handshake writes it again.</summary>
        public bool FinBefore { get; set; }

        /// <summary>This side in a new section: its next sequence number stays, its ISN is the one before it.</summary>
        public Side Continue() =>
            new(Address, Port, unchecked(Isn + (uint)End), Base is { } b ? b + End : null) { FinBefore = Fin };
    }

    /// <summary>
    /// The payload checksums of one chunk's segments, by where they start in it and how long they
    /// are: a chunk received on one leg and sent on the other is cut into the same segments on
    /// both, and the ones'-complement sum of the payload adds to each header's (it starts at an
    /// even offset), so each is summed once.
    /// </summary>
    internal sealed class PayloadSums
    {
        private readonly List<(int Start, int Length, uint Sum)> _known = [];

        public void Clear() => _known.Clear();

        public uint Get(ReadOnlySpan<byte> chunk, int start, int length)
        {
            foreach (var (knownStart, knownLength, sum) in _known)
            {
                if (knownStart == start && knownLength == length)
                {
                    return sum;
                }
            }

            uint added = Checksum.Add(0, chunk.Slice(start, length));
            _known.Add((start, length, added));
            return added;
        }
    }

    private static class Checksum
    {
        /// <summary>
        /// Adds <paramref name="bytes"/> as big-endian 16-bit words (an odd last byte padded with
        /// zero) to <paramref name="sum"/>, folded to 16 bits. Eight bytes at a time: a 64-bit
        /// word is congruent to the sum of its four 16-bit words modulo 0xFFFF, and so is a sum
        /// of such words with end-around carry (2^64 - 1 is a multiple of 0xFFFF).
        /// </summary>
        public static uint Add(uint sum, ReadOnlySpan<byte> bytes)
        {
            ulong wide = sum;
            int i = 0;
            for (; i + 8 <= bytes.Length; i += 8)
            {
                ulong word = BinaryPrimitives.ReadUInt64BigEndian(bytes[i..]);
                wide += word;
                if (wide < word)
                {
                    wide++;
                }
            }

            while (wide >> 16 != 0)
            {
                wide = (wide & 0xFFFF) + (wide >> 16);
            }

            sum = (uint)wide;
            for (; i + 1 < bytes.Length; i += 2)
            {
                sum += (uint)((bytes[i] << 8) | bytes[i + 1]);
                if ((sum & 0x80000000) != 0)
                {
                    sum = (sum & 0xFFFF) + (sum >> 16);
                }
            }

            if (i < bytes.Length)
            {
                sum += (uint)(bytes[i] << 8);
            }

            return sum;
        }

        public static ushort Finish(uint sum)
        {
            while ((sum >> 16) != 0)
            {
                sum = (sum & 0xFFFF) + (sum >> 16);
            }

            return (ushort)~sum;
        }
    }
}
