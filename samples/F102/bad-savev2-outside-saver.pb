•	
"serve*2.21.0³

xPlaceholder
V
StatefulPartitionedCallStatefulPartitionedCallx*
fR
__inference___call___5

saver_filenamePlaceholder
j
StatefulPartitionedCall_1StatefulPartitionedCallsaver_filename*$
fR
__inference__traced_save_10
m
StatefulPartitionedCall_2StatefulPartitionedCallsaver_filename*'
f"R 
__inference__traced_restore_20Ç
•

__inference___call___5
x?
prefixConst*.
value%B#B/tmp/modelscan-lite-sample-ckpt1
SaveV2SaveV2prefix:output:0names:output:0
Â
.
__inference__traced_save_10
file_prefix7
StringJoin/inputs_1Const*
valueBB
_temp/partC

StringJoin
StringJoinfile_prefixStringJoin/inputs_1:output:0

num_shardsConst
shardConst\
ShardedFilenameShardedFilenameStringJoin:output:0shard:output:0num_shards:output:0<
SaveV2SaveV2ShardedFilename:filename:0names:output:0Q
MergeV2CheckpointsMergeV2CheckpointsShardedFilename:filename:0file_prefix
h
1
__inference__traced_restore_20
file_prefix3
	RestoreV2	RestoreV2file_prefixnames:output:0"L
saver_filename:0StatefulPartitionedCall_1:0StatefulPartitionedCall_28