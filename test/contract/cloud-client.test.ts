import { HttpCloudClient, MultiCloudClient } from '../../agent/sync/cloud-client.js'
import { cloudClientContract } from './cloud-client.contract.js'

cloudClientContract('one node (HttpCloudClient)', (endpoints, key, timeoutMs) => {
  return new HttpCloudClient(endpoints[0] as string, key, timeoutMs)
})

cloudClientContract('several nodes (MultiCloudClient)', (endpoints, key, timeoutMs) => {
  return new MultiCloudClient(endpoints, key, timeoutMs)
})
