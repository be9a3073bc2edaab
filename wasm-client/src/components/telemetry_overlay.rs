use crate::state::AppState;
use crate::util::{fixed, signed};
use shared_protocol::MotorState;
use yew::prelude::*;

/// Clock differences above this are pointed out next to the latency.
const CLOCK_WARN_MS: f64 = 50.0;

/// Props of [`TelemetryOverlay`].
#[derive(Properties, PartialEq)]
pub struct TelemetryOverlayProps {
    /// The page state.
    pub state: UseReducerHandle<AppState>,
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{} ms", fixed(v, 0)))
}

/// Latency, round trip, received video figures and the robot's status.
#[component]
pub fn TelemetryOverlay(props: &TelemetryOverlayProps) -> Html {
    let s = &props.state;
    let v = &s.video;
    let live = s.conn == crate::connection::ConnState::Live;
    let latency_class = match s.latency_ms {
        Some(l) if l < 150.0 => "good",
        Some(l) if l < 400.0 => "fair",
        Some(_) => "poor",
        None => "",
    };
    let resolution = if v.width > 0 {
        format!("{}×{}", v.width, v.height)
    } else {
        "–".into()
    };
    let (fps, kbps) = if live && v.width > 0 {
        (fixed(v.fps, 0), format!("{} kb/s", fixed(v.kbps, 0)))
    } else {
        ("–".into(), "–".into())
    };
    let clock = s
        .clock_offset_ms
        .filter(|o| o.abs() > CLOCK_WARN_MS)
        .map(|o| format!("robot clock {} ms", signed(o, 0)));
    let status = s.status.as_ref().map(|st| {
        let who = if st.you_drive {
            "You drive"
        } else if st.driver {
            "Someone else drives"
        } else {
            "Nobody drives"
        };
        let motors = match st.motors {
            MotorState::Running => "motors running",
            MotorState::Stopped => "motors stopped",
        };
        (
            who,
            motors,
            st.reason.clone(),
            st.motors == MotorState::Running,
        )
    });
    // The robot's view of this page's video link (congestion control and RTCP).
    let link = s.robot_stats.as_ref().filter(|_| live).and_then(|r| {
        let mut parts = Vec::new();
        if let Some(kbps) = r.link_kbps {
            parts.push(format!("link {kbps} kb/s"));
        }
        if let Some(target) = r.target_kbps {
            parts.push(format!("encoder {target} kb/s"));
        }
        if let Some(lost) = r.packets_lost {
            parts.push(format!("{lost} lost"));
        }
        if let Some(nacks) = r.nacks {
            parts.push(format!("{nacks} NACKs"));
        }
        if let Some(rtt) = r.rtt_ms {
            parts.push(format!("video RTT {} ms", fixed(rtt, 0)));
        }
        if r.layer == Some(0) {
            parts.push("base layer (half frame rate)".to_owned());
        }
        (!parts.is_empty()).then(|| parts.join(" · "))
    });
    // Where the picture comes from, and the robot's SFU publisher: one line of text
    // (a few conditional nodes cost more bundle than the string).
    let via_sfu = s.sfu.source == crate::sfu::plan::Source::Sfu;
    let publisher = s.robot_stats.as_ref().and_then(|r| r.sfu.as_ref());
    let via = (via_sfu || publisher.is_some()).then(|| {
        let mut line = String::from(if via_sfu {
            "Video via SFU"
        } else {
            "Video from the robot"
        });
        if let Some(f) = publisher {
            line.push_str(" · SFU ");
            line.push_str(&f.state);
            if let Some(error) = &f.error {
                line.push_str(" (");
                line.push_str(error);
                line.push(')');
            }
        }
        if let Some(reason) = s.sfu.reason.as_ref().filter(|_| !via_sfu) {
            line.push_str(" · ");
            line.push_str(reason);
        }
        line
    });
    let d = s.drive;
    html! {
        <section id="telemetry" class="panel telemetry" aria-label="Telemetry">
            <dl class="figures">
                <div class={classes!("figure", "latency", latency_class)} title="Glass-to-glass latency, median of the last 60 frames">
                    <dt>{ "Latency" }</dt><dd>{ ms(s.latency_ms) }</dd>
                </div>
                <div class="figure" title="Data channel round trip">
                    <dt>{ "RTT" }</dt><dd>{ ms(s.rtt_ms) }</dd>
                </div>
                <div class="figure"><dt>{ "FPS" }</dt><dd>{ fps }</dd></div>
                <div class="figure"><dt>{ "Bitrate" }</dt><dd>{ kbps }</dd></div>
                <div class="figure"><dt>{ "Video" }</dt><dd>{ resolution }</dd></div>
                <div class="figure" title="Frames shown / last stamped frame number">
                    <dt>{ "Frames" }</dt>
                    <dd>{ s.frames }{ s.stamp_frame.map(|f| format!(" #{f}")).unwrap_or_default() }</dd>
                </div>
            </dl>
            if let Some(via) = via {
                <p id="video-via" class="sfu" data-video-source={s.sfu.source.name()}>{ via }</p>
            }
            if let Some(link) = link.filter(|_| !via_sfu) {
                <p class="link muted" title="The robot's estimate of this page's video link">{ link }</p>
            }
            if let Some(clock) = clock {
                <p class="warn">{ clock }</p>
            }
            if let Some((who, motors, reason, running)) = status {
                <p class={classes!("status", running.then_some("running"))}>
                    <strong>{ who }</strong>{ " · " }{ motors }
                    if let Some(reason) = reason { <span class="muted">{ " · " }{ reason }</span> }
                </p>
            }
            <p class="drive" title="Last drive state sent">
                { format!("fwd {} · turn {}", signed(d.forward, 2), signed(d.turn, 2)) }
                if s.gamepad { <span class="chip small">{ "🎮 gamepad" }</span> }
            </p>
        </section>
    }
}
