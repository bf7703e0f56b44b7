//! The kernel relay against real sockets on 127.0.0.1: once a bridge's rules are in, packets
//! sent to one leg's port arrive at the other leg's far end from the other leg's port, the
//! legs' own sockets see nothing, the counters are right, and closing the bridge (and dropping
//! the relay) removes every rule. Needs root and `nft` (scripts/install-sip-deps.sh).

use campana_sip::kernel_relay::{nft_program, paths, KernelRelay};
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

fn socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
    s
}

fn addr(s: &UdpSocket) -> SocketAddr {
    s.local_addr().expect("local addr")
}

fn nft_tables() -> String {
    let out = std::process::Command::new(nft_program())
        .args(["list", "tables"])
        .output()
        .expect("nft runs (scripts/install-sip-deps.sh installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn a_bridge_is_forwarded_by_the_kernel_and_removed_on_close() {
    let relay = KernelRelay::start("127.0.0.1".parse().expect("ip")).expect("kernel relay starts (root and nft needed)");
    let table = relay.table().to_string();
    assert!(nft_tables().contains(&table), "table {table} exists");
    // customer <-> leg_a [kernel] leg_b <-> phone
    let (customer, phone, leg_a, leg_b) = (socket(), socket(), socket(), socket());
    let (to_phone, to_customer) = paths(addr(&leg_a), addr(&customer), addr(&leg_b), addr(&phone)).expect("ipv4");
    let bridge = relay.bridge(to_phone, to_customer).await.expect("rules added");
    let mut buf = [0u8; 64];
    for i in 0..5u8 {
        customer.send_to(&[0x80, 0, 0, i], addr(&leg_a)).expect("send");
        let (n, from) = phone.recv_from(&mut buf).expect("the phone receives the customer's packet");
        assert_eq!((&buf[..n], from), (&[0x80, 0, 0, i][..], addr(&leg_b)), "from leg b's port");
        phone.send_to(&[0x80, 0, 1, i, 9], from).expect("send back");
        let (n, from) = customer.recv_from(&mut buf).expect("the customer receives the phone's packet");
        assert_eq!((&buf[..n], from), (&[0x80, 0, 1, i, 9][..], addr(&leg_a)), "from leg a's port");
    }
    leg_a.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
    assert!(leg_a.recv_from(&mut buf).is_err(), "the leg's own socket saw nothing");
    let [a, b] = bridge.close().await;
    assert_eq!((a.packets, a.bytes, b.packets, b.bytes), (5, 5 * (20 + 8 + 4), 5, 5 * (20 + 8 + 5)));
    // Closed: packets reach the leg's socket again.
    customer.send_to(&[0x80, 0, 0, 42], addr(&leg_a)).expect("send");
    let (n, _) = leg_a.recv_from(&mut buf).expect("the leg receives once the bridge is closed");
    assert_eq!(&buf[..n], &[0x80, 0, 0, 42]);
    drop(relay);
    // The worker deletes the table once the relay is gone.
    let mut gone = false;
    for _ in 0..50 {
        if !nft_tables().contains(&table) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "table {table} removed");
}

#[test]
fn a_wildcard_address_is_refused_with_the_reason() {
    let e = KernelRelay::start("0.0.0.0".parse().expect("ip")).err().expect("refused");
    assert!(e.to_string().contains("specific IPv4 address"), "{e}");
    let e = KernelRelay::start("::1".parse().expect("ip")).err().expect("refused");
    assert!(e.to_string().contains("::1"), "{e}");
}
