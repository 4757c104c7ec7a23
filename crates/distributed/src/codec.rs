//! The physical extension codec every process of an atlasflow cluster shares: atlasflow's
//! own plan node ([`PassExec`]) is written as a tagged postcard message; everything else
//! (Ballista's shuffle nodes) goes to Ballista's codec. Stock Ballista binaries lack it and
//! cannot decode an atlasflow plan, which is why atlasflow ships its own `scheduler` and
//! `executor` subcommands.

use std::sync::Arc;

use ballista_core::serde::BallistaPhysicalExtensionCodec;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};

use crate::exec::{PassExec, PassTask};

/// First byte of an atlasflow node.
const TAG_PASS: u8 = 0xA7;
/// First byte of a node left to Ballista's codec.
const TAG_BALLISTA: u8 = 0;
/// Version of the `PassTask` encoding; a process of another version refuses the plan.
const FORMAT: u8 = 1;

/// atlasflow's codec, wrapping Ballista's.
#[derive(Debug)]
pub struct AtlasCodec {
    inner: BallistaPhysicalExtensionCodec,
}

impl Default for AtlasCodec {
    fn default() -> Self {
        AtlasCodec { inner: BallistaPhysicalExtensionCodec::default() }
    }
}

impl AtlasCodec {
    /// The codec, shared.
    pub fn shared() -> Arc<dyn PhysicalExtensionCodec> {
        Arc::new(AtlasCodec::default())
    }
}

impl PhysicalExtensionCodec for AtlasCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        conv: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match buf {
            [TAG_PASS, FORMAT, body @ ..] => {
                let task: PassTask = postcard::from_bytes(body)
                    .map_err(|e| DataFusionError::Internal(format!("cannot decode an atlasflow pass: {e}")))?;
                let [input] = inputs else {
                    return Err(DataFusionError::Internal(format!("an atlasflow pass takes one input, not {}", inputs.len())));
                };
                Ok(Arc::new(PassExec::new(Arc::new(task), Arc::clone(input))))
            }
            [TAG_PASS, v, ..] => Err(DataFusionError::Plan(format!(
                "the plan was written by an atlasflow whose pass format is {v}, this one reads {FORMAT}: run the same atlasflow version on the client, scheduler and executors"
            ))),
            [TAG_BALLISTA, rest @ ..] => self.inner.try_decode(rest, inputs, ctx, conv),
            _ => Err(DataFusionError::Plan("not an atlasflow plan node: is this process atlasflow's scheduler or executor?".into())),
        }
    }

    fn try_encode(&self, node: Arc<dyn ExecutionPlan>, buf: &mut Vec<u8>, conv: &dyn PhysicalProtoConverterExtension) -> Result<()> {
        if let Some(pass) = node.downcast_ref::<PassExec>() {
            buf.extend_from_slice(&[TAG_PASS, FORMAT]);
            let body = postcard::to_stdvec(pass.task()).map_err(|e| DataFusionError::Internal(format!("cannot encode an atlasflow pass: {e}")))?;
            buf.extend_from_slice(&body);
            Ok(())
        } else {
            buf.push(TAG_BALLISTA);
            self.inner.try_encode(node, buf, conv)
        }
    }
}
