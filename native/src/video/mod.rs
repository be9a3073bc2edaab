//! Video: source → encoder → stream, once for every viewer.
//!
//! - [`frame`]: the pictures that flow ([`Frame`] raw I420, [`EncodedFrame`] H.264);
//! - [`source`]: where pictures come from ([`VideoSource`] raw, [`EncodedSource`]
//!   H.264): the test pattern, files, V4L2 cameras, or your own;
//! - [`encoder`]: raw to H.264 (openh264, the V4L2 M2M hardware encoder, the fallback
//!   between them);
//! - [`h264`]: just enough Annex B parsing to pass H.264 through;
//! - [`stream`]: the one capture/encode thread whose frames every viewer shares;
//! - [`keyframes`]: when that encoder forces a keyframe (viewers' requests throttled);
//! - [`rate`]: the shared encoder's bitrate from the viewers' bandwidth estimates;
//! - [`layers`]: which temporal layers each viewer gets (a slow one: the base only);
//! - [`incoming`]: the browsers' cameras, decoded for the robot's program;
//! - [`pace`]: how steady the stream is (fps and the longest frame gap, last seconds);
//! - [`pipeline`]: which source and encoder the configuration asks for;
//! - [`config`]: the `[video]` settings.
//!
//! Data flows one way: nothing here knows about the network.

pub mod config;
pub mod encoder;
pub mod frame;
pub mod h264;
pub mod incoming;
pub mod keyframes;
pub mod layers;
pub mod pace;
pub mod pipeline;
pub mod rate;
pub mod source;
pub mod stream;

pub use config::{EncoderChoice, VideoConfig};
pub use encoder::{EncoderError, EncoderSettings, VideoEncoder};
pub use frame::{now_us, EncodedFrame, Frame};
pub use keyframes::{KeyframePolicy, KEYFRAME_REQUEST_INTERVAL};
pub use layers::{LayerChoice, Layers};
pub use pace::{FrameTimes, Steadiness};
pub use pipeline::{open_pipeline, PipelineError};
pub use rate::{Follow, RatePolicy, ViewerEstimate};
pub use source::{test_pattern::TestPattern, Camera, EncodedSource, SourceError, VideoSource};
pub use stream::{Pipeline, StreamCounters, StreamEnd, VideoStream, Viewer};
