//! Getting an IPv4 address on a board: DHCPv4, with a static fallback,
//! that follows the link. Enabled by the `dhcpv4` feature.

use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::dhcpv4;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpCidr, Ipv4Address, Ipv4Cidr};

/// What [`Addressing::poll`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AddressChange {
    /// Nothing.
    None,
    /// A DHCP lease gave the interface this address.
    Leased(Ipv4Cidr),
    /// No lease came in time: the interface got the static address.
    Fallback(Ipv4Cidr),
    /// The lease was lost or the link went down: the interface has no IPv4
    /// address now.
    Lost,
}

/// Where addressing stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AddressState {
    /// The link is down (or not yet reported up): no IPv4 address.
    LinkDown,
    /// The link is up, no address yet: asking for a lease, and falling
    /// back to the static address at `deadline`.
    Asking {
        /// When the static address is taken without a lease.
        deadline: Instant,
    },
    /// A lease gave the interface this address.
    Leased(Ipv4Cidr),
    /// The static address is in use; DHCP is still asking.
    Fallback,
}

/// DHCPv4 with a static fallback, following the link; see the
/// docs below.
///
/// A board's PHY reports its link some seconds after reset, and a cable
/// can be pulled and put back at any time, so everything here counts from
/// the link, which the caller reports on every [`Addressing::poll`]:
///
/// - **Link up**: the DHCP socket starts afresh ([`dhcpv4::Socket::reset`]:
///   a discover goes out at once) and the fallback timer starts. A lease
///   gives the interface its address ([`AddressChange::Leased`]); without one for
///   `timeout`, the static address is used ([`AddressChange::Fallback`]).
/// - **Link down**: the DHCP socket is reset and the IPv4 address (leased
///   or static) and the default IPv4 route are removed ([`AddressChange::Lost`]):
///   the next link may lead to another network. Up again, it starts over.
/// - **After the fallback, DHCP keeps asking** (a discover every 10 s, as
///   smoltcp retries), and a lease that comes later replaces the static
///   address. A DHCP server that starts after the board (a router powered
///   up with it) would otherwise leave it, until the next link change, at
///   an address that the network may not route; clients connected to the
///   static address lose their connections when the lease comes.
/// - **A lost lease** (expired, or refused on renewal) removes the leased
///   address and starts the fallback timer again.
///
/// Only IPv4 addresses are touched: IPv6 addresses (static or link-local)
/// stay through every change of lease and link.
#[derive(Debug)]
pub struct Addressing {
    dhcp: SocketHandle,
    timeout: Duration,
    fallback: Ipv4Cidr,
    gateway: Option<Ipv4Address>,
    link_up: bool,
    state: AddressState,
}

impl Addressing {
    /// Adds a DHCP socket to `sockets` (add it before the server's
    /// sockets). Nothing is asked until [`Addressing::poll`] reports the
    /// link up; from then on, without a lease within `timeout`, `fallback`
    /// (with `gateway`, if any) is used.
    pub fn new(
        sockets: &mut SocketSet<'_>,
        timeout: Duration,
        fallback: Ipv4Cidr,
        gateway: Option<Ipv4Address>,
    ) -> Self {
        Addressing {
            dhcp: sockets.add(dhcpv4::Socket::new()),
            timeout,
            fallback,
            gateway,
            link_up: false,
            state: AddressState::LinkDown,
        }
    }

    /// Where addressing stands.
    pub fn state(&self) -> AddressState {
        self.state
    }

    /// Follow the link (`link_up`: as the driver reports it now; a driver
    /// that cannot tell passes `true`), apply
    /// what the DHCP socket has learnt, or fall back. Call after each
    /// interface poll. Returns what changed and when this needs a call
    /// again: now, after a link change (the reset DHCP socket wants to
    /// send); the fallback deadline while asking; `None` otherwise (the
    /// DHCP socket's own timers are in the interface's poll delay).
    pub fn poll(
        &mut self,
        now: Instant,
        link_up: bool,
        iface: &mut Interface,
        sockets: &mut SocketSet<'_>,
    ) -> (AddressChange, Option<Instant>) {
        let socket = sockets.get_mut::<dhcpv4::Socket>(self.dhcp);
        let mut change = AddressChange::None;
        let mut wake = None;
        if link_up != self.link_up {
            self.link_up = link_up;
            socket.reset();
            wake = Some(now);
            if link_up {
                info!("link up: asking for a DHCP lease");
                self.state = AddressState::Asking {
                    deadline: now + self.timeout,
                };
            } else {
                if self.has_address() {
                    warn!("link down: IPv4 address removed");
                    remove_address(iface);
                    change = AddressChange::Lost;
                }
                self.state = AddressState::LinkDown;
            }
        }

        match socket.poll() {
            // Not while the link is down (it is reset when the link comes
            // up again).
            Some(dhcpv4::Event::Configured(_)) if !link_up => {}
            Some(dhcpv4::Event::Configured(lease)) => {
                info!("DHCP lease {}", lease.address);
                set_address(iface, lease.address, lease.router);
                self.state = AddressState::Leased(lease.address);
                change = AddressChange::Leased(lease.address);
            }
            // The socket also reports this at start and after a reset of a
            // lease already removed with the link: nothing to take away.
            Some(dhcpv4::Event::Deconfigured) => {
                if let AddressState::Leased(_) = self.state {
                    warn!("DHCP lease lost");
                    remove_address(iface);
                    self.state = AddressState::Asking {
                        deadline: now + self.timeout,
                    };
                    change = AddressChange::Lost;
                }
            }
            None => {}
        }

        if let AddressState::Asking { deadline } = self.state {
            if now >= deadline {
                warn!("no DHCP lease in time, using {}", self.fallback);
                set_address(iface, self.fallback, self.gateway);
                self.state = AddressState::Fallback;
                change = AddressChange::Fallback(self.fallback);
            } else {
                wake = Some(wake.map_or(deadline, |at: Instant| at.min(deadline)));
            }
        }
        (change, wake)
    }

    fn has_address(&self) -> bool {
        matches!(self.state, AddressState::Leased(_) | AddressState::Fallback)
    }
}

/// Give `iface` the one IPv4 address `cidr` and the default route.
fn set_address(iface: &mut Interface, cidr: Ipv4Cidr, gateway: Option<Ipv4Address>) {
    iface.update_ip_addrs(|addrs| {
        addrs.retain(|a| !matches!(a, IpCidr::Ipv4(_)));
        if addrs.push(IpCidr::Ipv4(cidr)).is_err() {
            warn!("no room for address {}", cidr);
        }
    });
    match gateway {
        // Fails only for a gateway that is not unicast; then no route.
        Some(gateway) => {
            if iface.routes_mut().add_default_ipv4_route(gateway).is_err() {
                warn!("unusable gateway {}", gateway);
            }
        }
        None => {
            iface.routes_mut().remove_default_ipv4_route();
        }
    }
}

/// Take every IPv4 address and the default IPv4 route off `iface`; IPv6
/// addresses stay.
fn remove_address(iface: &mut Interface) {
    iface.update_ip_addrs(|addrs| addrs.retain(|a| !matches!(a, IpCidr::Ipv4(_))));
    iface.routes_mut().remove_default_ipv4_route();
}
