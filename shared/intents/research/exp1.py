from common import *
C=77
# baseline last layer, centred, prototype and head
for layers in [[12],[11],[10],[9],[8],[6],[11,12],[10,11,12],[9,10,11,12],[8,9,10,11,12],[6,8,10,12]]:
    mean=[exq[:,l,:].mean(0) for l in layers]
    Xtr=feats(exq,layers,mean); Xd=feats(devq,layers,mean)
    P=np.zeros((C,Xtr.shape[1]))
    for c in range(C): P[c]=Xtr[ytr==c].mean(0)
    P=nrm(P)
    acc_p=((Xd@P.T).argmax(1)==ydev).mean()
    W,b=head_train(Xtr,ytr,C)
    acc_h=((Xd@W.T+b).argmax(1)==ydev).mean()
    print(layers, f'proto {acc_p*100:.2f} head {acc_h*100:.2f}')
