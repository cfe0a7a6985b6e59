//! Getting an IPv4 address on a board: DHCPv4, with a static fallback.
//!
//! A board asks for a lease at start; if none comes within a timeout it
//! takes its static address and stops asking (a late lease would move the
//! server from under its clients). A lease that is later lost takes the
//! address away until a new one comes. Enabled by the `dhcpv4` feature.

use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::dhcpv4;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpCidr, Ipv4Address, Ipv4Cidr};

/// What [`Addressing::poll`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing.
    None,
    /// A DHCP lease gave the interface this address.
    Leased(Ipv4Cidr),
    /// No lease came in time: the interface got the static address.
    Fallback(Ipv4Cidr),
    /// The lease was lost: the interface has no IPv4 address now.
    Lost,
}

/// DHCPv4 with a static fallback; see the [module docs](self).
#[derive(Debug)]
pub struct Addressing {
    dhcp: Option<SocketHandle>,
    deadline: Instant,
    fallback: Ipv4Cidr,
    gateway: Option<Ipv4Address>,
}

impl Addressing {
    /// Start asking for a lease: adds a DHCP socket to `sockets` (add it
    /// before the server's sockets). Without a lease by `now + timeout`,
    /// `fallback` (with `gateway`, if any) is used.
    pub fn new(
        sockets: &mut SocketSet<'_>,
        now: Instant,
        timeout: Duration,
        fallback: Ipv4Cidr,
        gateway: Option<Ipv4Address>,
    ) -> Self {
        Addressing {
            dhcp: Some(sockets.add(dhcpv4::Socket::new())),
            deadline: now + timeout,
            fallback,
            gateway,
        }
    }

    /// Apply what the DHCP socket has learnt, or fall back. Call after each
    /// interface poll. Returns what changed and when this needs a call
    /// again (the fallback deadline while waiting for a first lease).
    pub fn poll(
        &mut self,
        now: Instant,
        iface: &mut Interface,
        sockets: &mut SocketSet<'_>,
    ) -> (Change, Option<Instant>) {
        let Some(handle) = self.dhcp else {
            return (Change::None, None);
        };
        let change = match sockets.get_mut::<dhcpv4::Socket>(handle).poll() {
            Some(dhcpv4::Event::Configured(lease)) => {
                log::info!("DHCP lease {}", lease.address);
                set_address(iface, lease.address, lease.router);
                Change::Leased(lease.address)
            }
            // The socket also reports this once at start, holding nothing.
            Some(dhcpv4::Event::Deconfigured) if iface.ipv4_addr().is_none() => Change::None,
            Some(dhcpv4::Event::Deconfigured) => {
                log::warn!("DHCP lease lost");
                iface.update_ip_addrs(|addrs| addrs.clear());
                iface.routes_mut().remove_default_ipv4_route();
                Change::Lost
            }
            None => Change::None,
        };
        if change != Change::None || iface.ipv4_addr().is_some() {
            return (change, None);
        }
        if now >= self.deadline {
            sockets.remove(handle);
            self.dhcp = None;
            log::warn!("no DHCP lease in time, using {}", self.fallback);
            set_address(iface, self.fallback, self.gateway);
            return (Change::Fallback(self.fallback), None);
        }
        (Change::None, Some(self.deadline))
    }
}

/// Give `iface` the one IPv4 address `cidr` and the default route.
fn set_address(iface: &mut Interface, cidr: Ipv4Cidr, gateway: Option<Ipv4Address>) {
    iface.update_ip_addrs(|addrs| {
        addrs.retain(|a| !matches!(a, IpCidr::Ipv4(_)));
        if addrs.push(IpCidr::Ipv4(cidr)).is_err() {
            log::warn!("no room for address {}", cidr);
        }
    });
    match gateway {
        // Fails only for a gateway that is not unicast; then no route.
        Some(gateway) => {
            if iface.routes_mut().add_default_ipv4_route(gateway).is_err() {
                log::warn!("unusable gateway {}", gateway);
            }
        }
        None => {
            iface.routes_mut().remove_default_ipv4_route();
        }
    }
}
