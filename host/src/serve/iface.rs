//! The smoltcp interface: the server's addresses and routes.

use smoltcp::iface::{Config as IfaceConfig, Interface};
use smoltcp::phy::Device;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr, Ipv6Address};

use super::{random_seed, Args};

/// The interface of `args` on `device`: its IPv4 and IPv6 addresses, a
/// link-local IPv6 address, and the default routes.
pub fn interface(args: &Args, device: &mut impl Device, now: Instant) -> Result<Interface, String> {
    let mut config = IfaceConfig::new(args.mac.into());
    config.random_seed = random_seed();
    let mut iface = Interface::new(config, device, now);
    iface.update_ip_addrs(|addrs| {
        for cidr in [
            IpCidr::Ipv4(args.ip),
            IpCidr::Ipv6(args.ipv6),
            IpCidr::new(IpAddress::Ipv6(link_local(args.mac)), 64),
        ] {
            let _ = addrs.push(cidr);
        }
    });
    let gateway = args.gateway.unwrap_or(args.host_ip.address());
    iface
        .routes_mut()
        .add_default_ipv4_route(gateway)
        .map_err(|e| format!("cannot add the default route: {e}"))?;
    iface
        .routes_mut()
        .add_default_ipv6_route(args.host_ipv6.address())
        .map_err(|e| format!("cannot add the default IPv6 route: {e}"))?;
    Ok(iface)
}

/// The EUI-64 link-local address of `mac`.
fn link_local(mac: EthernetAddress) -> Ipv6Address {
    let m = mac.0;
    Ipv6Address::new(
        0xfe80,
        0,
        0,
        0,
        u16::from_be_bytes([m[0] ^ 0x02, m[1]]),
        u16::from_be_bytes([m[2], 0xff]),
        u16::from_be_bytes([0xfe, m[3]]),
        u16::from_be_bytes([m[4], m[5]]),
    )
}
